package cri_test

import (
	"reflect"
	"strings"
	"testing"
)

// TestCritestReportParse reads ginkgo JSON reports as critest writes
// them: per group counts, the groups of the focus only (one whose specs
// the runtime all skipped included), failures with their messages,
// specs passed at a second attempt; bad input is an error.
func TestCritestReportParse(t *testing.T) {
	const report = `[{"SpecReports": [
{"ContainerHierarchyTexts": [], "LeafNodeText": "", "State": "passed"},
{"ContainerHierarchyTexts": ["[k8s.io] Runtime info", "runtime should support returning runtime info"], "LeafNodeText": "runtime should return version info [Conformance]", "State": "passed", "NumAttempts": 1},
{"ContainerHierarchyTexts": ["[k8s.io] Runtime info", "runtime should support returning runtime info"], "LeafNodeText": "runtime should return runtime config", "State": "failed", "NumAttempts": 2, "Failure": {"Message": "Unimplemented"}},
{"ContainerHierarchyTexts": ["[k8s.io] Idempotence", "StopPodSandbox"], "LeafNodeText": "should not return an error if not found", "State": "passed", "NumAttempts": 2},
{"ContainerHierarchyTexts": ["[k8s.io] Idempotence", "StopPodSandbox"], "LeafNodeText": "metrics", "State": "skipped"},
{"ContainerHierarchyTexts": ["[k8s.io] Image Identifier Consistency"], "LeafNodeText": "should return the same image identifier", "State": "skipped", "Failure": {"Message": "image_id is empty"}},
{"ContainerHierarchyTexts": ["[k8s.io] AppArmor", "runtime should support apparmor"], "LeafNodeText": "should work", "State": "skipped"},
{"ContainerHierarchyTexts": ["[k8s.io] Streaming"], "LeafNodeText": "exec", "State": "timedout", "Failure": {"Message": "timed out"}}
]}]`
	focus := `\[k8s\.io\] (Runtime info|Idempotence|Image Identifier Consistency|Streaming) `
	var r critestResult
	if err := r.parse([]byte(report), focus); err != nil {
		t.Fatal(err)
	}
	wantGroups := []critestCounts{
		{Group: "Idempotence", Passed: 1, Skipped: 1},
		{Group: "Image Identifier Consistency", Skipped: 1},
		{Group: "Runtime info", Passed: 1, Failed: 1},
		{Group: "Streaming", Failed: 1},
	}
	if !reflect.DeepEqual(r.Groups, wantGroups) {
		t.Errorf("groups = %+v, want %+v", r.Groups, wantGroups)
	}
	if len(r.Failed) != 2 || !strings.Contains(r.Failed[0], "runtime should return runtime config: failed: Unimplemented") ||
		!strings.Contains(r.Failed[1], "[k8s.io] Streaming exec: timedout: timed out") {
		t.Errorf("failed = %q", r.Failed)
	}
	if len(r.Flaky) != 1 || !strings.Contains(r.Flaky[0], "attempt 2: [k8s.io] Idempotence StopPodSandbox should not return") {
		t.Errorf("flaky = %q", r.Flaky)
	}
	if len(r.Skipped) != 3 { // AppArmor's too: not focused
		t.Errorf("skipped = %q", r.Skipped)
	}
	r.Seconds = 71.4
	want := "| group | passed | failed | skipped |\n| --- | --- | --- | --- |\n" +
		"| Idempotence | 1 | 0 | 1 |\n| Image Identifier Consistency | 0 | 0 | 1 |\n" +
		"| Runtime info | 1 | 1 | 0 |\n| Streaming | 0 | 1 | 0 |\n| all (1m11s) | 2 | 2 | 2 |\n"
	if got := r.table(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []struct{ report, focus, want string }{
		{`{"not": "a list"}`, focus, "cannot unmarshal"},
		{`[`, focus, "unexpected end"},
		{`[]`, `(`, "focus"},
	} {
		var r critestResult
		if err := r.parse([]byte(bad.report), bad.focus); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("parse(%q, %q) = %v, want an error with %q", bad.report, bad.focus, err, bad.want)
		}
	}
}
