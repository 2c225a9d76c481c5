package manifest

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadFilesConfigMapsSecrets: ConfigMap and Secret documents are taken
// from the pod's file or from other files, defaulted and validated as the
// API server does; keys that could leave a volume directory and oversized
// objects are refused with field errors that never print a secret value.
func TestLoadFilesConfigMapsSecrets(t *testing.T) {
	pod := strings.ReplaceAll(minimalPod, "%s", "p")
	cm := func(extra string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n" + extra
	}
	secret := func(extra string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: sec}\n" + extra
	}
	huge := strings.Repeat("x", 1<<20)
	tests := []struct {
		name    string
		files   []string
		ns      string
		wantErr []string // substrings; none = success
		check   func(t *testing.T, o *Objects)
	}{
		{
			name:  "same file",
			files: []string{pod + "---\n" + cm("data: {a.conf: hello}\nbinaryData: {b.bin: AAE=}\n") + "---\n" + secret("stringData: {password: s3cret}\n")},
			check: func(t *testing.T, o *Objects) {
				if len(o.Pods) != 1 || len(o.ConfigMaps) != 1 || len(o.Secrets) != 1 {
					t.Fatalf("got %d pods, %d configmaps, %d secrets", len(o.Pods), len(o.ConfigMaps), len(o.Secrets))
				}
				c := o.ConfigMaps[0]
				if c.Namespace != "default" || c.Data["a.conf"] != "hello" || string(c.BinaryData["b.bin"]) != "\x00\x01" {
					t.Errorf("configmap = %+v", c)
				}
				s := o.Secrets[0]
				if s.Namespace != "default" || s.Type != "Opaque" || string(s.Data["password"]) != "s3cret" || s.StringData != nil {
					t.Errorf("secret not defaulted as the API server does: %+v", s)
				}
				if got := o.Source(s); got != "f0.yaml: document 3" {
					t.Errorf("Source(secret) = %q", got)
				}
			},
		},
		{
			name:  "several files, stringData wins over data",
			files: []string{cm("data: {k: v}\n"), pod, secret("data: {k: b2xk}\nstringData: {k: new}\n")},
			check: func(t *testing.T, o *Objects) {
				if got := string(o.Secrets[0].Data["k"]); got != "new" {
					t.Errorf("secret k = %q, want stringData's %q", got, "new")
				}
				if got := o.Source(o.Secrets[0]); got != "f2.yaml: document 1" {
					t.Errorf("Source(secret) = %q", got)
				}
			},
		},
		{
			name:  "namespace flag",
			files: []string{pod + "---\n" + cm("data: {k: v}\n")},
			ns:    "team",
			check: func(t *testing.T, o *Objects) {
				if o.Pods[0].Namespace != "team" || o.ConfigMaps[0].Namespace != "team" {
					t.Errorf("namespaces = %q, %q, want team", o.Pods[0].Namespace, o.ConfigMaps[0].Namespace)
				}
			},
		},
		{
			name:    "namespace flag against another namespace",
			files:   []string{pod + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n"},
			ns:      "team",
			wantErr: []string{`f0.yaml: document 2: the namespace from the provided object "other" does not match the namespace "team"`},
		},
		{
			name:    "only a configmap",
			files:   []string{cm("data: {k: v}\n"), "# nothing\n"},
			wantErr: []string{"f0.yaml, f1.yaml: no pod documents found"},
		},
		{
			name:    "key escaping the volume",
			files:   []string{pod, secret("stringData: {../x: stolen-value}\n")},
			wantErr: []string{`f1.yaml: document 1: Secret "default/sec": data[../x]: Invalid value: "../x": must not start with '..'`},
		},
		{
			name:    "key with a slash",
			files:   []string{pod, cm("data: {a/b: v}\n")},
			wantErr: []string{`f1.yaml: document 1: ConfigMap "default/cfg": data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`},
		},
		{
			name:    "dot-dot key",
			files:   []string{pod, cm("binaryData: {..: AA==}\n")},
			wantErr: []string{`binaryData[..]: Invalid value: "..": must not be '..'`},
		},
		{
			name:    "key in data and binaryData",
			files:   []string{pod, cm("data: {k: v}\nbinaryData: {k: AA==}\n")},
			wantErr: []string{`data[k]: Invalid value: "k": duplicate of key present in binaryData`},
		},
		{
			name:    "configmap over 1 MiB",
			files:   []string{pod, cm("data: {a: " + huge[:1<<19] + ", b: " + huge[:1<<19] + "x}\n")},
			wantErr: []string{`ConfigMap "default/cfg": []: Too long: may not be more than 1048576 bytes`},
		},
		{
			name:    "secret over 1 MiB",
			files:   []string{pod, secret("stringData: {a: " + huge + "x}\n")},
			wantErr: []string{`Secret "default/sec": data: Too long: may not be more than 1048576 bytes`},
		},
		{
			name:    "tls secret missing its keys",
			files:   []string{pod, secret("type: kubernetes.io/tls\nstringData: {tls.crt: c}\n")},
			wantErr: []string{"data[tls.key]: Required value"},
		},
		{
			name:    "duplicate configmap across files",
			files:   []string{pod + "---\n" + cm("data: {k: v}\n"), cm("")},
			wantErr: []string{`f1.yaml: document 1: ConfigMap "default/cfg": metadata.name: Duplicate value: "cfg" (also f0.yaml: document 2)`},
		},
		{
			name:    "bad name",
			files:   []string{pod, "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n"},
			wantErr: []string{`metadata.name: Invalid value: "Bad_Name"`},
		},
		{
			name:    "unknown field in a configmap",
			files:   []string{pod, cm("datа: {k: v}\n")},
			wantErr: []string{`f1.yaml: document 1: error unmarshaling JSON: unknown field`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []File
			for i, f := range tt.files {
				files = append(files, File{Data: []byte(f), Source: "f" + string(rune('0'+i)) + ".yaml"})
			}
			o, _, err := LoadFiles(files, tt.ns)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("LoadFiles() accepted the files")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("LoadFiles() error =\n%v\nwant it to contain\n%s", err, w)
					}
				}
				if strings.Contains(err.Error(), "stolen-value") || strings.Contains(err.Error(), "xxxx") {
					t.Errorf("LoadFiles() error prints a secret value: %.200s", err)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("LoadFiles() error is not ErrInvalid")
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFiles() error = %v", err)
			}
			tt.check(t, o)
		})
	}
}
