package manifest

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestToSpecTerminal: stdin, stdinOnce and tty reach the spec; a tty gets
// TERM=xterm as with containerd, unless the container sets its own.
func TestToSpecTerminal(t *testing.T) {
	tests := []struct {
		name                  string
		c                     corev1.Container
		stdin, once, terminal bool
		term                  string
	}{
		{"plain", corev1.Container{}, false, false, false, ""},
		{"stdin", corev1.Container{Stdin: true}, true, false, false, ""},
		{"stdinOnce", corev1.Container{Stdin: true, StdinOnce: true}, true, true, false, ""},
		// The API server accepts stdinOnce alone; it means nothing then.
		{"stdinOnce without stdin", corev1.Container{StdinOnce: true}, false, false, false, ""},
		{"tty", corev1.Container{Stdin: true, TTY: true}, true, false, true, "TERM=xterm"},
		{"tty with TERM", corev1.Container{TTY: true, Env: []corev1.EnvVar{{Name: "TERM", Value: "vt100"}}}, false, false, true, "TERM=vt100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := toSpecOne(t, func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Stdin, c.StdinOnce, c.TTY, c.Env = tt.c.Stdin, tt.c.StdinOnce, tt.c.TTY, tt.c.Env
			})
			if c.Stdin != tt.stdin || c.StdinOnce != tt.once || c.TTY() != tt.terminal {
				t.Errorf("stdin %v once %v tty %v, want %v %v %v", c.Stdin, c.StdinOnce, c.TTY(), tt.stdin, tt.once, tt.terminal)
			}
			var terms []string
			for _, e := range c.OCI.Process.Env {
				if len(e) > 5 && e[:5] == "TERM=" {
					terms = append(terms, e)
				}
			}
			if tt.term == "" && len(terms) != 0 || tt.term != "" && !slices.Equal(terms, []string{tt.term}) {
				t.Errorf("TERM entries %q, want %q", terms, tt.term)
			}
		})
	}
}
