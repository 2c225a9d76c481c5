package namespaces

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExecCommandRejectsBadOptions(t *testing.T) {
	good := ExecOptions{Helper: "/bin/helper", Target: os.Getpid(), Process: specs.Process{Args: []string{"true"}}}
	tests := []struct {
		name   string
		mutate func(*ExecOptions)
	}{
		{"no helper", func(o *ExecOptions) { o.Helper = "" }},
		{"no target", func(o *ExecOptions) { o.Target = 0 }},
		{"no args", func(o *ExecOptions) { o.Process.Args = nil }},
		{"relative cgroup", func(o *ExecOptions) { o.Cgroups = []string{"cgroup.procs"} }},
		{"newline in cgroup", func(o *ExecOptions) { o.Cgroups = []string{"/a\npid=1"} }},
	}
	cmd := ExecCommand(good)
	if cmd.Err != nil {
		t.Fatalf("good options rejected: %v", cmd.Err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.mutate(&o)
			if cmd := ExecCommand(o); cmd.Err == nil {
				t.Error("ExecCommand accepted invalid options")
			}
		})
	}
}
