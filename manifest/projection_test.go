package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestProjections: the files of configMap, secret, downwardAPI and
// projected volumes are what the kubelet's volume plugins write: every key
// (binaryData too) or the items, item modes over the API's default 0644,
// labels as sorted quoted lines; a missing object or key fails with the
// kubelet's FailedMount message unless optional.
func TestProjections(t *testing.T) {
	src := &Sources{
		ConfigMaps: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"b.conf": "B", "a.conf": "A"}, BinaryData: map[string][]byte{"bin": {0, 1}}}},
		Secrets:    map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"password": []byte("pw")}}},
	}
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	tests := []struct {
		name    string
		vol     corev1.VolumeSource
		want    string // "path:mode:data" joined by " "
		secret  bool
		wantErr string
	}{
		{name: "configMap, all keys", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cfg")}},
			want: "a.conf:644:A b.conf:644:B bin:644:\x00\x01"},
		{name: "configMap items and modes", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cfg"), DefaultMode: ptr.To[int32](0o600),
			Items: []corev1.KeyToPath{{Key: "a.conf", Path: "dir/a"}, {Key: "b.conf", Path: "b", Mode: ptr.To[int32](0o400)}}}},
			want: "b:400:B dir/a:600:A"},
		{name: "secret defaults to 0644 as the API does", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}},
			want: "password:644:pw", secret: true},
		{name: "secret 0400", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr.To[int32](0o400)}},
			want: "password:400:pw", secret: true},
		{name: "missing configMap", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("nope")}},
			wantErr: `MountVolume.SetUp failed for volume "v" : configmap "nope" not found`},
		{name: "missing secret", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}},
			wantErr: `MountVolume.SetUp failed for volume "v" : secret "nope" not found`},
		{name: "missing key", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cfg"), Items: []corev1.KeyToPath{{Key: "x", Path: "x"}}}},
			wantErr: `configmap references non-existent config key: x`},
		{name: "missing secret key", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", Items: []corev1.KeyToPath{{Key: "x", Path: "x"}}}},
			wantErr: `references non-existent secret key: x`},
		{name: "optional missing", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr.To(true)}}, want: "", secret: true},
		{name: "downwardAPI", vol: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}, Mode: ptr.To[int32](0o444)},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}, want: "labels:644:app=\"web\"\nzone=\"a \\\"b\\\"\" name:644:p uid:444:u-1"},
		{name: "projected", vol: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o440), Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("cfg"), Items: []corev1.KeyToPath{{Key: "a.conf", Path: "a"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: ref("sec")}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}, want: "a:440:A ns:440:default password:440:pw", secret: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Name, pod.Labels = "p", map[string]string{"zone": `a "b"`, "app": "web"}
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: tt.vol}}
			pod.Spec.Containers = []corev1.Container{{Name: "a", Image: "busybox"}}
			SetDefaults(pod)
			prs, err := Projections(pod, "u-1", src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrVolumeSetUp) {
					t.Fatalf("Projections() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(prs) != 1 || prs[0].Name != "v" || prs[0].Secret != tt.secret {
				t.Fatalf("Projections() = %+v", prs)
			}
			var got []string
			for _, f := range prs[0].Files {
				got = append(got, fmt.Sprintf("%s:%o:%s", f.Path, f.Mode, f.Data))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("files = %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}
