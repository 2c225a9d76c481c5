package image

import (
	"io"
	"math"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// ProgressBars shows a pull's layer downloads as they happen.
type ProgressBars interface {
	// Layer starts the bar of a layer's blob of size compressed bytes.
	Layer(blob v1.Hash, size int64) LayerBar
}

// LayerBar is one layer's bar.
type LayerBar interface {
	// Add counts n more bytes of the blob received.
	Add(n int)
	// Done ends the bar: present when the store had the layer, err when
	// the layer failed.
	Done(present bool, err error)
}

// TerminalBars draws one bar per layer and a total (bytes, speed) on a
// terminal, with github.com/vbauerster/mpb. Lines written to it appear
// above the bars.
type TerminalBars struct {
	p *mpb.Progress
	w io.Writer // the terminal, for lines while no bar is drawn

	mu     sync.Mutex
	total  *mpb.Bar // every layer's bytes; created with the first layer
	sum    int64    // the total bar's total so far
	waited bool     // Wait was called: no more frames
}

var (
	_ ProgressBars = (*TerminalBars)(nil)
	_ io.Writer    = (*TerminalBars)(nil)
)

// NewTerminalBars draws on w, a terminal.
func NewTerminalBars(w io.Writer) *TerminalBars {
	// Auto refresh: mpb would not draw on a writer it does not recognise as
	// a terminal (the caller decided it is one).
	return &TerminalBars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh()), w: w}
}

// Layer implements ProgressBars.
func (t *TerminalBars) Layer(blob v1.Hash, size int64) LayerBar {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total == nil {
		// Priority MaxInt: the total stays the bottom line.
		t.total = t.p.AddBar(0, mpb.BarPriority(math.MaxInt),
			mpb.PrependDecorators(decor.Name("total       ", decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name(" "),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
	}
	t.sum += size
	t.total.SetTotal(t.sum, false)
	short := blob.Hex[:min(12, len(blob.Hex))]
	b := t.p.AddBar(size,
		mpb.PrependDecorators(decor.Name(short, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.OnComplete(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), "done")))
	return &terminalBar{t: t, b: b, size: size}
}

// Write prints p above the bars; before the first bar and after Wait,
// straight to the terminal (mpb prints lines only with its next frame).
func (t *TerminalBars) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total == nil || t.waited {
		return t.w.Write(p)
	}
	return t.p.Write(p)
}

// Wait completes the total and waits for the last frame.
func (t *TerminalBars) Wait() {
	t.mu.Lock()
	if t.total != nil {
		t.total.SetTotal(-1, true)
	}
	t.waited = true
	t.mu.Unlock()
	t.p.Wait()
}

// terminalBar is one layer's mpb bar.
type terminalBar struct {
	t    *TerminalBars
	b    *mpb.Bar
	size int64
	got  int64 // bytes counted so far
}

func (b *terminalBar) Add(n int) {
	b.got += int64(n)
	b.b.IncrBy(n)
	b.t.total.IncrBy(n)
}

func (b *terminalBar) Done(present bool, err error) {
	switch {
	case err != nil:
		b.b.Abort(false)
	case present:
		// Nothing downloaded: the bar and the total count it as done.
		b.t.total.IncrInt64(b.size - b.got)
		b.b.SetTotal(-1, true)
	default:
		b.b.SetTotal(-1, true)
	}
}
