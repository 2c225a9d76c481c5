package image

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTerminalBarsLinesWithoutBars: lines written while no layer is
// pulled (run's warnings, "up to date") still reach the terminal, and Wait
// returns at once.
func TestTerminalBarsLinesWithoutBars(t *testing.T) {
	var out syncBuf
	bars := NewTerminalBars(&out)
	fmt.Fprintln(bars, "Warning: something")
	done := make(chan struct{})
	go func() { bars.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait without bars did not return")
	}
	if !strings.Contains(out.String(), "Warning: something") {
		t.Errorf("the line was lost: %q", out.String())
	}
}
