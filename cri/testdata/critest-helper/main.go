// Command critest-helper stands in for the programs of critest's images
// that busybox does not have; it is one static binary that acts by the
// name it is installed under:
//
//   - nginx [-p PORT]: nginx as critest's specs see it — its pid in
//     /var/run/nginx.pid, "nginx: master process" in /proc/PID/cmdline,
//     and a page on / (port 80 by default).
//   - nonewprivs: prints "Effective uid: N"; installed setuid root, it
//     shows whether the kernel let the setuid bit raise the uid (the
//     no_new_privs spec).
//   - pause: the sandbox ("pause") image's command for a runtime that runs
//     one (containerd): as the real pause, it reaps the children it
//     inherits as PID 1 and exits on SIGINT or SIGTERM; its command name
//     is "pause", which no spec looks for (a `sleep` stand-in showed up in
//     the exec timeout spec's `pgrep sleep` where the pod shares its PID
//     namespace).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// pause waits for SIGINT or SIGTERM, reaping every child that exits
// meanwhile. Every other signal is caught and dropped, as the kernel
// drops a default-action signal sent to a namespace's init: left to Go's
// runtime, a SIGHUP, SIGUSR1 or the like would have it re-raise the signal,
// find itself still alive (as init) and exit with 2.
func pause() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	for sig := range sigs {
		switch sig {
		case syscall.SIGINT, syscall.SIGTERM:
			os.Exit(0)
		case syscall.SIGCHLD:
		default:
			continue
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

const masterTitle = "nginx: master process nginx"

func main() {
	switch filepath.Base(os.Args[0]) {
	case "nonewprivs":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	case "pause":
		pause()
	default:
		if strings.HasPrefix(os.Args[0], "nginx") {
			nginx()
			return
		}
		fmt.Fprintf(os.Stderr, "critest-helper: unknown name %q\n", os.Args[0])
		os.Exit(2)
	}
}

func nginx() {
	if os.Args[0] != masterTitle {
		// nginx rewrites its argv to this title; re-executing the same
		// file with it as argv[0] shows it in /proc/PID/cmdline, while
		// the command name (the file's) stays "nginx" for pidof.
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, append([]string{masterTitle}, os.Args[1:]...), os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nginx: failed to set the process title: %v\n", err)
		os.Exit(1)
	}
	fs := flag.NewFlagSet("nginx", flag.ExitOnError)
	port := fs.Int("p", 80, "port to serve on")
	fs.String("g", "", "nginx directives (ignored)")
	fs.Parse(os.Args[1:])
	if err := os.MkdirAll("/var/run", 0o755); err == nil {
		os.WriteFile("/var/run/nginx.pid", []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<title>Welcome to nginx!</title>")
	})
	fmt.Printf("nginx: serving on port %d\n", *port)
	if err := http.ListenAndServe(fmt.Sprintf(":%d", *port), nil); err != nil {
		fmt.Fprintln(os.Stderr, "nginx:", err)
		os.Exit(1)
	}
}
