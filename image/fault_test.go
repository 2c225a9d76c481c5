package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// blobGetter is a hook that recognises GETs of one blob and counts them.
type blobGetter struct {
	digest v1.Hash
	n      atomic.Int32
}

func (b *blobGetter) match(r *http.Request) (int, bool) {
	if r.Method != http.MethodGet || r.URL.RawQuery == "real" || !strings.HasSuffix(r.URL.Path, "/blobs/"+b.digest.String()) {
		return 0, false
	}
	return int(b.n.Add(1)), true
}

// realBlob fetches the blob's true bytes from the fake registry itself.
func realBlob(t *testing.T, host, path string) []byte {
	resp, err := http.Get("http://" + host + path + "?real")
	if err != nil {
		t.Errorf("fetch real blob: %v", err)
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return data
}

// truncate writes half of data under a Content-Length of all of it, then
// ends the response: the client reads an unexpected EOF.
func truncate(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data[:len(data)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler) // close the connection mid-body
}

// TestPullRegistryFaults serves faults from go-containerregistry's
// registry, wrapped: a blob cut short once is fetched again and the pull
// succeeds; one cut short every time fails naming the blob, nothing kept;
// 500s on the manifest and on a blob are retried; an unknown manifest fails
// with MANIFEST_UNKNOWN, the HTTP status, the image and the registry.
func TestPullRegistryFaults(t *testing.T) {
	img := imageOf(t, "sh", layerOf(t, file("big", strings.Repeat("x", 64<<10))), layerOf(t, file("b", "b")))
	layers, _ := img.Layers()
	d0, _ := layers[0].Digest()

	t.Run("truncated once", func(t *testing.T) {
		bg := &blobGetter{digest: d0}
		var host string
		host = fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			if n, ok := bg.match(r); ok && n == 1 {
				truncate(w, realBlob(t, host, r.URL.Path))
				return true
			}
			return false
		})
		push(t, host+"/x:1", img)
		s := openStore(t)
		got, err := s.Pull(context.Background(), host+"/x:1", PullOptions{})
		if err != nil {
			t.Fatalf("pull with a blob cut short once: %v", err)
		}
		if n := bg.n.Load(); n != 2 {
			t.Errorf("the cut blob was fetched %d times, want 2", n)
		}
		if data, err := os.ReadFile(got.Layers[0].Dir + "/big"); err != nil || len(data) != 64<<10 {
			t.Errorf("layer file: %d bytes, %v", len(data), err)
		}
	})
	t.Run("truncated always", func(t *testing.T) {
		bg := &blobGetter{digest: d0}
		var host string
		host = fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			if _, ok := bg.match(r); ok {
				truncate(w, realBlob(t, host, r.URL.Path))
				return true
			}
			return false
		})
		push(t, host+"/x:1", img)
		s := openStore(t)
		_, err := s.Pull(context.Background(), host+"/x:1", PullOptions{})
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), d0.String()) {
			t.Fatalf("pull with a blob always cut short: %v, want unexpected EOF naming %s", err, d0)
		}
		if n := bg.n.Load(); n != layerAttempts {
			t.Errorf("the cut blob was fetched %d times, want %d", n, layerAttempts)
		}
		checkNothingStored(t, s)
	})
	t.Run("500 then success", func(t *testing.T) {
		bg := &blobGetter{digest: d0}
		var manifests atomic.Int32
		host := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") && r.URL.RawQuery != "real" && manifests.Add(1) == 1 {
				http.Error(w, "busy", http.StatusInternalServerError)
				return true
			}
			if n, ok := bg.match(r); ok && n == 1 {
				http.Error(w, "busy", http.StatusInternalServerError)
				return true
			}
			return false
		})
		push(t, host+"/x:1", img)
		manifests.Store(0)
		if _, err := openStore(t).Pull(context.Background(), host+"/x:1", PullOptions{}); err != nil {
			t.Fatalf("pull with one 500 on the manifest and one on a blob: %v", err)
		}
		if m, b := manifests.Load(), bg.n.Load(); m != 2 || b != 2 {
			t.Errorf("manifest fetched %d times and blob %d times, want 2 and 2", m, b)
		}
	})
	t.Run("manifest unknown", func(t *testing.T) {
		host := fakeRegistry(t, nil)
		push(t, host+"/x:1", img)
		s := openStore(t)
		_, err := s.Pull(context.Background(), host+"/x:2", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") || !strings.Contains(err.Error(), "HTTP 404") ||
			!strings.Contains(err.Error(), host+"/x:2") || !strings.Contains(err.Error(), "registry "+host) {
			t.Fatalf("pull of an unknown tag: %v, want MANIFEST_UNKNOWN, HTTP 404, the image and the registry", err)
		}
		checkNothingStored(t, s)
	})
}

// Environment of the puller subprocess TestPullKilled starts.
const (
	pullerStoreEnv = "PEAPOD_TEST_PULLER_STORE"
	pullerRefEnv   = "PEAPOD_TEST_PULLER_REF"
)

// TestPullerProcess is the puller TestPullKilled runs in a subprocess (this
// test binary again); without its environment it does nothing.
func TestPullerProcess(t *testing.T) {
	dir, ref := os.Getenv(pullerStoreEnv), os.Getenv(pullerRefEnv)
	if dir == "" {
		return
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestPullKilled SIGKILLs a pulling process at a random moment, several
// times (before, during and after the downloads of the fast layers, while a
// slow blob trickles in): no image, name or layer is visible in the store
// afterwards, and the next pull completes with the right content.
func TestPullKilled(t *testing.T) {
	slowLayer := layerOf(t, file("slow", strings.Repeat("s", 256<<10)))
	slowDigest, _ := slowLayer.Digest()
	img := imageOf(t, "sh", layerOf(t, file("a", "a")), slowLayer, layerOf(t, file("c", "c")))
	var mu sync.Mutex
	stall := true // the slow blob never completes while the test kills pullers
	started := make(chan struct{}, 64)
	var host string
	host = fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.RawQuery == "real" || !strings.HasSuffix(r.URL.Path, "/blobs/"+slowDigest.String()) {
			return false
		}
		mu.Lock()
		stalled := stall
		mu.Unlock()
		if !stalled {
			return false
		}
		data := realBlob(t, host, r.URL.Path)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/3])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done() // until the puller dies
		return true
	})
	ref := host + "/slow:1"
	push(t, ref, img)
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPullerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), pullerStoreEnv+"="+dir, pullerRefEnv+"="+ref)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Rounds 0-2 kill at a random moment from the start (process
		// start-up, the manifest, the fast layers); rounds 3-5 a random
		// moment after the slow blob began.
		if round >= 3 {
			select {
			case <-started:
			case err := <-exited:
				t.Fatalf("round %d: the puller exited (%v) before the slow blob:\n%s", round, err, out.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: the slow blob was never requested", round)
			}
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond) // the random moment itself, not a wait for an event
		cmd.Process.Signal(syscall.SIGKILL)
		if err := <-exited; err == nil {
			t.Fatalf("round %d: the puller finished although the slow blob never completes:\n%s", round, out.String())
		}
		for len(started) > 0 {
			<-started
		}
		if imgs, err := s.List(); err != nil || len(imgs) != 0 {
			t.Fatalf("round %d: after the kill the store lists %v (%v), want nothing", round, imgs, err)
		}
		if _, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: Get(%s) after the kill = %v, want ErrNotFound", round, ref, err)
		}
		if names := dirNames(t, s.recordsDir()); len(names) != 0 {
			t.Fatalf("round %d: records after the kill: %v", round, names)
		}
	}
	mu.Lock()
	stall = false
	mu.Unlock()
	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatalf("the pull after the kills: %v", err)
	}
	if data, err := os.ReadFile(got.Layers[1].Dir + "/slow"); err != nil || len(data) != 256<<10 {
		t.Errorf("slow layer file: %d bytes, %v", len(data), err)
	}
	if debris := dirNames(t, s.tmpDir()); len(debris) != 0 {
		t.Errorf("staging debris after the next pull: %v", debris)
	}
	var want []string
	for _, l := range got.Layers {
		want = append(want, strings.TrimPrefix(l.DiffID, "sha256:"))
	}
	if have := dirNames(t, s.layersDir()); fmt.Sprint(have) != fmt.Sprint(slices.Sorted(slices.Values(want))) {
		t.Errorf("layers dir holds %v, want exactly the image's %v", have, want)
	}
}

// TestDescribeStatus: the status is named unless go-containerregistry's
// message already names it; a port with the status's digits in it (the
// failure CI hit with 127.0.0.1:40485) does not count.
func TestDescribeStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"codes in the body", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode, Message: "Unknown manifest"}}}, "HTTP 404 Not Found: "},
		{"no body", &transport.Error{StatusCode: 404}, ""},
		{"port with 404 in it", fmt.Errorf("GET http://127.0.0.1:40485/v2/x/manifests/2: %w", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode, Message: "Unknown manifest"}}}), "HTTP 404 Not Found: "},
		{"not a registry error", io.ErrUnexpectedEOF, ""},
	} {
		if got := describeStatus(tc.err); got != tc.want {
			t.Errorf("%s: describeStatus(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
