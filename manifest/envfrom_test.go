package manifest

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestResolveEnv: envFrom and configMapKeyRef/secretKeyRef resolve as the
// kubelet resolves them: envFrom first, env replacing it and expanding
// $(VAR) against it; invalid names (relaxed validation: "1bad" is valid, "A=B" is not) skipped with the kubelet's warning
// (keys only, never values); a missing object or key is
// CreateContainerConfigError with the kubelet's message unless optional.
func TestResolveEnv(t *testing.T) {
	src := &Sources{
		ConfigMaps: map[string]*corev1.ConfigMap{"cfg": {
			Data:       map[string]string{"MODE": "fast", "1bad": "v1", "A=B": "v2", "LEVEL": "3"},
			BinaryData: map[string][]byte{"BIN": []byte("b")},
		}},
		Secrets: map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"PASSWORD": []byte("hunter2"), "x=y": []byte("hunter3")}}},
	}
	cmRef := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
	}
	secRef := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
	}
	cmFrom := func(name, prefix string, optional bool) corev1.EnvFromSource {
		return corev1.EnvFromSource{Prefix: prefix, ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: ptr.To(optional)}}
	}
	secFrom := func(name, prefix string, optional bool) corev1.EnvFromSource {
		return corev1.EnvFromSource{Prefix: prefix, SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: ptr.To(optional)}}
	}
	tests := []struct {
		name     string
		env      []corev1.EnvVar
		envFrom  []corev1.EnvFromSource
		want     string // "K=V" joined by " ", in order
		warnings []string
		wantErr  string
	}{
		{
			name:    "envFrom with prefix, env replaces and expands",
			envFrom: []corev1.EnvFromSource{cmFrom("cfg", "", false), secFrom("sec", "S_", false)},
			env:     []corev1.EnvVar{{Name: "MODE", Value: "slow-$(LEVEL)"}, {Name: "PW", ValueFrom: secRef("sec", "PASSWORD", false)}, {Name: "L", ValueFrom: cmRef("cfg", "LEVEL", false)}},
			want:    "1bad=v1 LEVEL=3 MODE=slow-3 S_PASSWORD=hunter2 PW=hunter2 L=3",
			warnings: []string{
				`container "app": Keys [A=B] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid environment variable names.`,
				`container "app": Keys [S_x=y] from the EnvFrom secret ns/sec were skipped since they are considered invalid environment variable names.`,
			},
		},
		{name: "a prefix applies to every key of its source", envFrom: []corev1.EnvFromSource{secFrom("sec", "", false), cmFrom("cfg", "PASS", false)},
			want: "PASSWORD=hunter2 PASS1bad=v1 PASSLEVEL=3 PASSMODE=fast", warnings: []string{"Keys [x=y]", "Keys [PASSA=B]"}},
		{name: "missing configmap", envFrom: []corev1.EnvFromSource{cmFrom("nope", "", false)}, wantErr: `container "app": CreateContainerConfigError: configmap "nope" not found`},
		{name: "missing secret", env: []corev1.EnvVar{{Name: "X", ValueFrom: secRef("nope", "k", false)}}, wantErr: `container "app": CreateContainerConfigError: secret "nope" not found`},
		{name: "missing configmap key", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmRef("cfg", "nokey", false)}}, wantErr: `couldn't find key nokey in ConfigMap ns/cfg`},
		{name: "binaryData is not read into env", env: []corev1.EnvVar{{Name: "X", ValueFrom: cmRef("cfg", "BIN", false)}}, wantErr: `couldn't find key BIN in ConfigMap ns/cfg`},
		{name: "missing secret key", env: []corev1.EnvVar{{Name: "X", ValueFrom: secRef("sec", "nokey", false)}}, wantErr: `couldn't find key nokey in Secret ns/sec`},
		{
			name:    "optional ones are skipped",
			envFrom: []corev1.EnvFromSource{cmFrom("nope", "", true), secFrom("nope", "", true)},
			env:     []corev1.EnvVar{{Name: "A", ValueFrom: cmRef("nope", "k", true)}, {Name: "B", ValueFrom: secRef("sec", "nokey", true)}, {Name: "C", Value: "c"}},
			want:    "C=c",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Namespace = "ns"
			c := &corev1.Container{Name: "app", Env: tt.env, EnvFrom: tt.envFrom}
			order, vals, warnings, err := resolveEnv(c, pod, src, podFields{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrContainerConfig) {
					t.Fatalf("resolveEnv() error = %v, want %q (ErrContainerConfig)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range order {
				got = append(got, k+"="+vals[k])
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("env = %q, want %q", strings.Join(got, " "), tt.want)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %d", warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
				if strings.Contains(warnings[i], "hunter") {
					t.Errorf("warning prints a secret value: %q", warnings[i])
				}
			}
		})
	}
}
