package image

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// syncBuf is a bytes.Buffer safe for mpb's renderer and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTerminalBars pulls a three-layer image with bars (layers fetched in
// parallel feed them): a bar per layer, finished, a total of every byte,
// and no per-layer lines mixed in; a second image sharing a layer shows it
// done without downloading it.
func TestTerminalBars(t *testing.T) {
	host := fakeRegistry(t, nil)
	shared := layerOf(t, file("shared", strings.Repeat("s", 100<<10)))
	img := imageOf(t, "sh", shared, layerOf(t, file("b", strings.Repeat("b", 50<<10))), layerOf(t, file("c", "c")))
	push(t, host+"/bars:1", img)
	push(t, host+"/bars:2", imageOf(t, "sh", shared, layerOf(t, file("d", "d"))))
	s := openStore(t)
	for _, ref := range []string{host + "/bars:1", host + "/bars:2"} {
		var out syncBuf
		bars := NewTerminalBars(&out)
		_, err := s.Pull(context.Background(), ref, PullOptions{Bars: bars, Progress: bars})
		bars.Wait()
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		screen := out.String()
		d, _ := shared.Digest()
		if strings.Count(screen, "] done") < 2 || !strings.Contains(screen, d.Hex[:12]) || !strings.Contains(screen, "total") {
			t.Errorf("%s: bars = %q", ref, screen)
		}
		if strings.Contains(screen, "pulled,") || strings.Contains(screen, "already present") {
			t.Errorf("%s: per-layer lines mixed into the bars: %q", ref, screen)
		}
	}
}
