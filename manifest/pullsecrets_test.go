package manifest

import (
	"fmt"
	"strings"
	"testing"
)

// TestImagePullSecrets: a Pod's imagePullSecrets must name a Secret of a
// registry-credentials type in the same manifest and namespace; PullSecrets
// returns them in order.
func TestImagePullSecrets(t *testing.T) {
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  imagePullSecrets: [{name: regcred}%s]
  containers: [{name: c, image: busybox}]
`
	const secret = `---
apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: %s}
type: %s
data: {%s: e30=}
`
	dcj := func(name, ns string) string {
		return sprintf(secret, name, ns, "kubernetes.io/dockerconfigjson", ".dockerconfigjson")
	}
	objs, _, err := LoadFiles([]File{{Data: []byte(sprintf(pod, ", {name: legacy}") + dcj("regcred", "default") +
		sprintf(secret, "legacy", "default", "kubernetes.io/dockercfg", ".dockercfg")), Source: "ok.yaml"}}, "")
	if err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	got := objs.PullSecrets(objs.Pods[0])
	if len(got) != 2 || got[0].Name != "regcred" || got[1].Name != "legacy" {
		t.Errorf("PullSecrets = %v", got)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"absent":         {sprintf(pod, ""), `spec.imagePullSecrets[0].name: Not found: "regcred"`},
		"other ns":       {sprintf(pod, "") + dcj("regcred", "other"), `spec.imagePullSecrets[0].name: Not found: "regcred"`},
		"wrong type":     {sprintf(pod, "") + sprintf(secret, "regcred", "default", "Opaque", "x"), `Secret "regcred" has type "Opaque"`},
		"empty name":     {sprintf(pod, ", {name: ''}") + dcj("regcred", "default"), `spec.imagePullSecrets[1].name: Required value`},
		"second missing": {sprintf(pod, ", {name: nope}") + dcj("regcred", "default"), `spec.imagePullSecrets[1].name: Not found: "nope"`},
	} {
		_, _, err := LoadFiles([]File{{Data: []byte(tc.doc), Source: "bad.yaml"}}, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `bad.yaml`) {
			t.Errorf("%s: %v, want an error naming the file and %q", name, err, tc.want)
		}
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
