package image

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestImportChanges(t *testing.T) {
	rootfs := func(t *testing.T) []byte { return tarBytes(t, dir("bin/"), file("bin/sh", "#!")) }
	for _, tc := range []struct {
		name    string
		changes []string
		want    Config
		err     string
	}{
		{name: "exec-form CMD", changes: []string{`CMD ["sh"]`},
			want: Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}},
		{name: "shell-form CMD", changes: []string{`CMD echo hi`},
			want: Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}, Env: []string{defaultPath}}},
		{name: "ENTRYPOINT resets an earlier CMD", changes: []string{`CMD ["x"]`, `ENTRYPOINT ["/bin/app"]`, `cmd ["--flag"]`},
			want: Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--flag"}, Env: []string{defaultPath}}},
		{name: "ENV replaces PATH, adds others", changes: []string{`ENV PATH=/bin`, `ENV A b c`, `WORKDIR /srv`, `USER 1000:1000`},
			want: Config{Env: []string{"PATH=/bin", "A=b c"}, WorkingDir: "/srv", User: "1000:1000"}},
		{name: "unknown instruction", changes: []string{`RUN rm -rf /`}, err: `unsupported instruction "RUN"`},
		{name: "relative WORKDIR", changes: []string{`WORKDIR srv`}, err: "absolute"},
		{name: "bad JSON", changes: []string{`CMD ["sh"`}, err: "JSON array"},
		{name: "empty exec form", changes: []string{`CMD []`}, err: "empty command"},
		{name: "no argument", changes: []string{`CMD`}, err: "needs an argument"},
		{name: "ENV without a value", changes: []string{`ENV A`}, err: "NAME=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			img, err := s.Import(bytes.NewReader(rootfs(t)), "img", WithChanges(tc.changes...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("import with %q: error %v, want one containing %q", tc.changes, err, tc.err)
				}
				if imgs, err := s.List(); err != nil || len(imgs) > 0 {
					t.Errorf("a refused import left images: %v, %v", imgs, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("import with %q: %v", tc.changes, err)
			}
			got := img.Config
			if !slices.Equal(got.Cmd, tc.want.Cmd) || !slices.Equal(got.Entrypoint, tc.want.Entrypoint) ||
				!slices.Equal(got.Env, tc.want.Env) || got.WorkingDir != tc.want.WorkingDir || got.User != tc.want.User {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
			// Resolve reads the config back from the store.
			_, _, cfg, err := s.Resolve("img")
			if err != nil || !slices.Equal(cfg.Cmd, tc.want.Cmd) {
				t.Errorf("resolved config %+v, %v; want cmd %q", cfg, err, tc.want.Cmd)
			}
		})
	}
}

// TestImportChangesRefusedForConfiguredArchives: a docker save archive
// carries its own config, whose digest is the image ID.
func TestImportChangesRefusedForConfiguredArchives(t *testing.T) {
	s := openStore(t)
	data := dockerSave(t, "app:1", imageOf(t, "true", baseLayer(t)))
	_, err := s.Import(bytes.NewReader(data), "", WithChanges(`CMD ["sh"]`))
	if err == nil || !strings.Contains(err.Error(), "plain root filesystem tar only") {
		t.Fatalf("import of a docker save archive with changes: %v, want a refusal", err)
	}
	if _, err := s.Import(bytes.NewReader(data), ""); err != nil {
		t.Fatalf("the same archive without changes: %v", err)
	}
}
