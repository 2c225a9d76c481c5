package namespaces

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestReadInitReport(t *testing.T) {
	if err := readInitReport(strings.NewReader("")); err != nil {
		t.Errorf("EOF = %v, want success", err)
	}
	err := readInitReport(strings.NewReader(`{"message":"no sh","notFound":true}`))
	if !errors.Is(err, ErrExecNotFound) || !strings.Contains(err.Error(), "no sh") {
		t.Errorf("not-found report = %v", err)
	}
	err = readInitReport(strings.NewReader(`{"message":"mount failed"}`))
	if !errors.Is(err, ErrInitFailed) || errors.Is(err, ErrExecNotFound) || !strings.Contains(err.Error(), "mount failed") {
		t.Errorf("failure report = %v", err)
	}
	if err := readInitReport(strings.NewReader("garbage")); !errors.Is(err, ErrInitFailed) {
		t.Errorf("garbage report = %v", err)
	}
}

func TestExecProcessFromEnv(t *testing.T) {
	tests := []struct {
		name, joined, proc, filter string
		wantErr                    string
	}{
		{"not joined", "0", `{"args":["true"]}`, "", "not joined"},
		{"no constructor at all", "", `{"args":["true"]}`, "", "not joined"},
		{"undecodable", "1", `{"args":`, "", "decode"},
		{"no args", "1", `{"cwd":"/"}`, "", "no args"},
		{"bad filter", "1", `{"args":["true"]}`, "%%%", "decode exec seccomp filter"},
		{"good", "1", `{"args":["true"],"cwd":"/"}`, "", ""},
		{"good with filter", "1", `{"args":["true"],"cwd":"/"}`, "AAECAwQFBgc=", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(nsenterJoinedEnv, tt.joined)
			t.Setenv(execProcessEnv, tt.proc)
			t.Setenv(execSeccompEnv, tt.filter)
			proc, filter, err := ExecProcessFromEnv()
			if tt.wantErr == "" {
				if err != nil || len(proc.Args) != 1 || proc.Args[0] != "true" {
					t.Fatalf("ExecProcessFromEnv = %+v, %v; want args [true]", proc, err)
				}
				if want, _ := base64.StdEncoding.DecodeString(tt.filter); !bytes.Equal(filter, want) {
					t.Fatalf("filter = %v, want %v", filter, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ExecProcessFromEnv = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestInitReportRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		err      error
		notFound bool
	}{
		{fmt.Errorf("executable %q: %w", "sh", ErrExecNotFound), true},
		{errors.New("failed to mount proc"), false},
	} {
		got := readInitReport(bytes.NewReader(EncodeInitReport(tt.err)))
		if errors.Is(got, ErrExecNotFound) != tt.notFound || errors.Is(got, ErrInitFailed) == tt.notFound {
			t.Errorf("report of %v read back as %v", tt.err, got)
		}
		if !strings.Contains(got.Error(), tt.err.Error()) {
			t.Errorf("report of %v lost its message: %v", tt.err, got)
		}
	}
}
