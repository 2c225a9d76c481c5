package main

import (
	"strings"
	"testing"
)

func TestParseFileSpec(t *testing.T) {
	tests := []struct {
		arg  string
		want fileSpec
		err  string
	}{
		{arg: "web:/tmp/x", want: fileSpec{pod: "web", path: "/tmp/x"}},
		{arg: "kube-system/dns:etc", want: fileSpec{namespace: "kube-system", pod: "dns", path: "etc"}},
		{arg: "/tmp/a:b", want: fileSpec{path: "/tmp/a:b"}},
		{arg: "./a:b", want: fileSpec{path: "./a:b"}},
		{arg: "local/file", want: fileSpec{path: "local/file"}},
		{arg: ":x", err: "invalid file spec"},
		{arg: "web:", err: "can not be empty"},
		{arg: "a/b/c:x", err: "invalid file spec"},
		{arg: "/web:x", want: fileSpec{path: "/web:x"}},
		{arg: "", err: "can not be empty"},
	}
	for _, tc := range tests {
		got, err := parseFileSpec(tc.arg)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseFileSpec(%q) error %v, want %q", tc.arg, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseFileSpec(%q) = %+v, %v; want %+v", tc.arg, got, err, tc.want)
		}
	}
}

func TestParsePortPairs(t *testing.T) {
	tests := []struct {
		specs []string
		want  []portPair
		err   string
	}{
		{specs: []string{"8080"}, want: []portPair{{8080, 8080}}},
		{specs: []string{"8080:80", ":443", "0:22"}, want: []portPair{{8080, 80}, {0, 443}, {0, 22}}},
		{specs: []string{"80:0"}, err: "remote port"},
		{specs: []string{"x"}, err: "remote port"},
		{specs: []string{"70000:80"}, err: "local port"},
		{specs: []string{"-1:80"}, err: "local port"},
		{specs: []string{"80:65536"}, err: "remote port"},
	}
	for _, tc := range tests {
		got, err := parsePortPairs(tc.specs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parsePortPairs(%q) error %v, want %q", tc.specs, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("parsePortPairs(%q) = %v, %v", tc.specs, got, err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parsePortPairs(%q)[%d] = %v, want %v", tc.specs, i, got[i], tc.want[i])
			}
		}
	}
}

func TestListenAddrs(t *testing.T) {
	ips, opt, err := listenAddrs([]string{"localhost", "127.0.0.1", "10.0.0.5"})
	if err != nil || strings.Join(ips, ",") != "127.0.0.1,::1,10.0.0.5" || !opt["::1"] || opt["127.0.0.1"] || opt["10.0.0.5"] {
		t.Errorf("listenAddrs = %v %v %v", ips, opt, err)
	}
	if _, _, err := listenAddrs([]string{"example.com"}); err == nil || !strings.Contains(err.Error(), `invalid --address "example.com"`) {
		t.Errorf("listenAddrs(example.com) error %v", err)
	}
}
