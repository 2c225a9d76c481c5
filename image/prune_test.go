package image

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"
)

// TestPrune keeps the image a pod uses and its layers (one shared), and
// removes the other image and the layer only it used.
func TestPrune(t *testing.T) {
	s := openStore(t)
	a, b := sharedImages(t)
	imgA, err := s.Import(bytes.NewReader(a), "")
	if err != nil {
		t.Fatalf("import a: %v", err)
	}
	imgB, err := s.Import(bytes.NewReader(b), "")
	if err != nil {
		t.Fatalf("import b: %v", err)
	}
	// A layer a crashed import left behind, which no record names.
	if err := os.Mkdir(s.layerDir(hashOf(t, []byte("debris")).Hex), 0o700); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Prune(func(id string) []string {
		if id == imgA.ID {
			return []string{"default/web"}
		}
		return nil
	})
	if err != nil || !slices.Equal(removed, []string{imgB.ID}) {
		t.Fatalf("prune = %v, %v; want only %s removed", removed, err, imgB.ID)
	}
	if _, err := s.Get("app-b:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned image still found: %v", err)
	}
	if _, err := s.Get("app-a:v1"); err != nil {
		t.Errorf("image in use pruned: %v", err)
	}
	want := []string{imgA.Layers[0].Dir, imgA.Layers[1].Dir}
	var got []string
	for _, n := range dirNames(t, s.layersDir()) {
		got = append(got, s.layerDir(n))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("layers after prune = %v, want a's %v", got, want)
	}
	if removed, err := s.Prune(nil); err != nil || len(removed) != 1 || len(dirNames(t, s.layersDir())) != 0 {
		t.Errorf("prune of everything = %v, %v, layers %v", removed, err, dirNames(t, s.layersDir()))
	}
}
