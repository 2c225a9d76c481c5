package pod

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSecretsKeychain: pull secrets' credentials are found per registry,
// the first secret naming a registry wins, and a secret that cannot be
// read is an error naming it, never its value.
func TestSecretsKeychain(t *testing.T) {
	auth := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	secret := func(n string, typ corev1.SecretType, key, data string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default"}, Type: typ, Data: map[string][]byte{key: []byte(data)}}
	}
	first := secret("first", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, `{"auths":{"reg.lab:5000":{"auth":"`+auth("alice", "1")+`"}}}`)
	second := secret("second", corev1.SecretTypeDockercfg, corev1.DockerConfigKey, `{"reg.lab:5000":{"auth":"`+auth("bob", "2")+`"},"other.lab":{"auth":"`+auth("carol", "3")+`"}}`)
	kc, err := secretsKeychain([]*corev1.Secret{first, second}, authn.NewMultiKeychain())
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"reg.lab:5000/app": "alice", "other.lab/app": "carol", "quay.io/app": ""} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(r.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := a.Authorization()
		if cfg.Username != want {
			t.Errorf("%s: user %q, want %q", ref, cfg.Username, want)
		}
	}
	broken := secret("broken", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, `{"auths":{"r":{"auth":"s3cret-not-base64!"}}}`)
	if _, err := secretsKeychain([]*corev1.Secret{broken}, nil); err == nil || !strings.Contains(err.Error(), `"broken"`) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("broken secret: %v, want an error naming it without its value", err)
	}
	opaque := secret("opaque", corev1.SecretTypeOpaque, "x", "y")
	if _, err := secretsKeychain([]*corev1.Secret{opaque}, nil); err == nil || !strings.Contains(err.Error(), "Opaque") {
		t.Errorf("opaque secret: %v", err)
	}
}

// TestRepoDigestFor picks the status' imageID among an image's repo digests.
func TestRepoDigestFor(t *testing.T) {
	ds := []string{"reg.lab:5000/app@sha256:aa", "docker.io/library/nginx@sha256:bb"}
	for ref, want := range map[string]string{
		"nginx:1.27":                     "docker.io/library/nginx@sha256:bb",
		"docker.io/library/nginx":        "docker.io/library/nginx@sha256:bb",
		"reg.lab:5000/app:1":             "reg.lab:5000/app@sha256:aa",
		"quay.io/other:1":                "reg.lab:5000/app@sha256:aa",
		"reg.lab:5000/app@sha256:" + "c": "reg.lab:5000/app@sha256:aa",
	} {
		if got := repoDigestFor(ref, ds); got != want {
			t.Errorf("repoDigestFor(%q) = %q, want %q", ref, got, want)
		}
	}
	if got := repoDigestFor("busybox:latest", nil); got != "" {
		t.Errorf("an imported image's repo digest = %q", got)
	}
}
