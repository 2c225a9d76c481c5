package userdb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/runtime/spec"
)

func TestParsePasswdAndFindUser(t *testing.T) {
	entries, err := parsePasswd(strings.NewReader("# comment\nroot:x:0:0:root:/root:/bin/sh\nbad:line\nweird:x:a:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []passwdEntry{{"root", 0, 0, "/root"}, {"app", 1000, 1001, "/home/app"}}
	if !reflect.DeepEqual(entries, want) {
		t.Fatalf("parsePasswd = %+v, want %+v", entries, want)
	}
	if e, err := findPasswdUser(entries, "app"); err != nil || e.uid != 1000 || e.gid != 1001 {
		t.Errorf("findPasswdUser(app) = %+v, %v", e, err)
	}
	if e, err := findPasswdUser(entries, "4242"); err != nil || e.uid != 4242 {
		t.Errorf("findPasswdUser(4242) = %+v, %v", e, err)
	}
	if _, err := findPasswdUser(entries, "ghost"); err == nil {
		t.Error("findPasswdUser(ghost) found a user")
	}
}

func TestParseGroup(t *testing.T) {
	got, err := parseGroup(strings.NewReader("# comment\nroot:x:0:\nbad:line\nweird:x:a:app\nwheel:x:10:root, app ,\napp:x:1000:app\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []groupEntry{{"root", 0, nil}, {"wheel", 10, []string{"root", "app"}}, {"app", 1000, []string{"app"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseGroup = %+v, want %+v", got, want)
	}
}

// TestResolve is the supplemental groups policy: Merge adds the
// primary gid and the groups /etc/group lists the user's name in (not its
// own group of that name), Strict the gid only, "" (specs before) nothing;
// GIDFromPasswd takes the gid from the uid's entry.
func TestResolve(t *testing.T) {
	passwd := []passwdEntry{{"root", 0, 0, "/root"}, {"default-user", 1000, 1000, "/home/default-user"}, {"app", 2000, 2001, "/app"}}
	group := []groupEntry{
		{"root", 0, nil}, {"default-user", 1000, []string{"default-user"}},
		{"group-defined-in-image", 50000, []string{"default-user"}}, {"wheel", 10, []string{"root", "app"}},
	}
	groupErr := errors.New("unreadable /etc/group")
	tests := []struct {
		name     string
		user     specs.User
		identity spec.Identity
		groupErr bool
		want     User
		wantErr  string
	}{
		{"critest merge", specs.User{UID: 1000, AdditionalGids: []uint32{1234}}, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}, false,
			User{UID: 1000, GID: 1000, Groups: []int{1000, 1234, 50000}, Home: "/home/default-user"}, ""},
		{"critest strict", specs.User{UID: 1000, AdditionalGids: []uint32{1234}}, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsStrict}, true,
			User{UID: 1000, GID: 1000, Groups: []int{1000, 1234}, Home: "/home/default-user"}, ""},
		{"explicit gid kept", specs.User{UID: 1000, GID: 7}, spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}, false,
			User{UID: 1000, GID: 7, Groups: []int{7, 50000}, Home: "/home/default-user"}, ""},
		{"explicit gid 0 kept", specs.User{UID: 2000}, spec.Identity{SupplementalGroupsPolicy: spec.GroupsStrict}, false,
			User{UID: 2000, GID: 0, Groups: []int{0}, Home: "/app"}, ""},
		{"uid without an entry", specs.User{UID: 3000, AdditionalGids: []uint32{5, 5}}, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}, false,
			User{UID: 3000, GID: 0, Groups: []int{0, 5}}, ""},
		{"username", specs.User{Username: "app"}, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}, false,
			User{UID: 2000, GID: 2001, Groups: []int{2001, 10}, Home: "/app"}, ""},
		{"root merge", specs.User{}, spec.Identity{GIDFromPasswd: true, SupplementalGroupsPolicy: spec.GroupsMerge}, false,
			User{UID: 0, GID: 0, Groups: []int{0, 10}, Home: "/root"}, ""},
		{"spec before identity", specs.User{UID: 1000, AdditionalGids: []uint32{1234}}, spec.Identity{}, true,
			User{UID: 1000, GID: 0, Groups: []int{1234}, Home: "/home/default-user"}, ""},
		{"unknown username", specs.User{Username: "ghost"}, spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}, false, User{}, `user "ghost" not found`},
		{"unreadable group file", specs.User{UID: 1000}, spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}, true, User{}, "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(tt.user, tt.identity, passwd, func() ([]groupEntry, error) {
				if tt.groupErr {
					return nil, groupErr
				}
				return group, nil
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestLookupStaysInRoot is Lookup against a root the container controls:
// an absolute or dot-dot symlink for /etc/passwd resolves inside the root,
// never to the host's file beside it, a FIFO is refused instead of
// blocking, so is a file over maxDatabase, and a missing file means no
// entries.
func TestLookupStaysInRoot(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The "host's" file, outside root, names the user with other ids.
	write(filepath.Join(outer, "etc/passwd"), "app:x:1:1::/host:/bin/sh\n")
	write(filepath.Join(root, "etc/real-passwd"), "app:x:2000:2001::/app:/bin/sh\n")
	user := specs.User{Username: "app"}
	tests := []struct {
		name    string
		link    string // etc/passwd's symlink target ("" = a FIFO, "-" = none, "+" = too large)
		want    User
		wantErr string
	}{
		{"absolute symlink", "/etc/real-passwd", User{UID: 2000, GID: 2001, Home: "/app"}, ""},
		{"dot-dot symlink", "../../../../../etc/real-passwd", User{UID: 2000, GID: 2001, Home: "/app"}, ""},
		// Inside root, the host's path is etc/passwd itself: a loop.
		{"symlink to the host's", "../../etc/passwd", User{}, "too many levels of symbolic links"},
		{"fifo", "", User{}, "not a regular file"},
		{"missing", "-", User{}, `user "app" not found`},
		{"too large", "+", User{}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(root, "etc/passwd")
			os.Remove(p)
			switch tt.link {
			case "":
				if err := unix.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
			case "-":
			case "+":
				if err := os.WriteFile(p, make([]byte, maxDatabase+1), 0o644); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.Symlink(tt.link, p); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Lookup(root, user, spec.Identity{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Lookup = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
