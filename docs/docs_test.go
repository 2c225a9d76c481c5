package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checked are the documents whose references are held to the tree.
var checked = []string{"probes.md"}

var (
	// testRef is a test function named in backquotes.
	testRef = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	// pathRef is a backquoted path that may name a file of this repository.
	pathRef = regexp.MustCompile("`([a-z][a-z0-9_-]*/[A-Za-z0-9_./-]*)`")
	// testFunc is a test function's declaration.
	testFunc = regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
)

// repoTests returns the test functions declared under root.
func repoTests(t *testing.T, root string) map[string]bool {
	t.Helper()
	tests := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(src), -1) {
			tests[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failed to list the tests: %v", err)
	}
	return tests
}

func TestDocsNameExistingTestsAndFiles(t *testing.T) {
	const root = ".."
	tests := repoTests(t, root)
	for _, doc := range checked {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, m := range testRef.FindAllStringSubmatch(text, -1) {
			if !tests[m[1]] {
				t.Errorf("%s names test %s, which no _test.go file declares", doc, m[1])
			}
		}
		for _, m := range pathRef.FindAllStringSubmatch(text, -1) {
			path := m[1]
			top := strings.SplitN(path, "/", 2)[0]
			// Only paths under one of the repository's own top-level
			// directories: pkg/kubelet/... is the kubelet's.
			if st, err := os.Stat(filepath.Join(root, top)); err != nil || !st.IsDir() {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, path)); err != nil {
				t.Errorf("%s names %s, which does not exist", doc, path)
			}
		}
	}
}
