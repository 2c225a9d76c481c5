package pod

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/runtime/state"
)

func TestDefaultContainer(t *testing.T) {
	ctrs := func(names ...string) []corev1.Container {
		var out []corev1.Container
		for _, n := range names {
			out = append(out, corev1.Container{Name: n})
		}
		return out
	}
	tests := []struct {
		name       string
		annotation string
		containers []corev1.Container
		inits      []corev1.Container
		want, note string
	}{
		{name: "only container", containers: ctrs("app"), want: "app"},
		{name: "first of two", containers: ctrs("app", "side"), want: "app",
			note: `Defaulted container "app" out of: app, side`},
		{name: "init counts", containers: ctrs("app"), inits: ctrs("setup"), want: "app",
			note: `Defaulted container "app" out of: app, setup (init)`},
		{name: "annotation", annotation: "side", containers: ctrs("app", "side"), want: "side"},
		{name: "annotation names an init container", annotation: "setup", containers: ctrs("app"), inits: ctrs("setup"), want: "setup"},
		{name: "annotation names nothing", annotation: "gone", containers: ctrs("app", "side"), want: "app",
			note: "Default container name \"gone\" not found in pod web\nDefaulted container \"app\" out of: app, side"},
		{name: "no containers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: corev1.PodSpec{Containers: tc.containers, InitContainers: tc.inits}}
			if tc.annotation != "" {
				p.Annotations = map[string]string{DefaultContainerAnnotation: tc.annotation}
			}
			name, note := DefaultContainer(p)
			if name != tc.want || note != tc.note {
				t.Errorf("DefaultContainer = %q, %q; want %q, %q", name, note, tc.want, tc.note)
			}
			// The view decodes only the names from the stored manifest
			// (with the ephemeral containers a debug session adds): it
			// must choose as the whole pod does.
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
			full, fullNote := DefaultContainer(p)
			manifest, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			v := &View{Record: &state.Record{Namespace: "default", Name: "web", Manifest: manifest}}
			name, note, err = v.DefaultContainer()
			if tc.want == "" {
				if err == nil {
					t.Errorf("View.DefaultContainer of a pod without containers = %q, want an error", name)
				}
				return
			}
			if err != nil || name != full || note != fullNote {
				t.Errorf("View.DefaultContainer = %q, %q, %v; want %q, %q", name, note, err, full, fullNote)
			}
		})
	}
}
