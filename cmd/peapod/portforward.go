package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"sync"

	"github.com/peapod/peapod/runtime/pod"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newPortForwardCommand(g *globals) *cobra.Command {
	var addresses []string
	cmd := &cobra.Command{
		Use:   "port-forward POD [LOCAL_PORT:]REMOTE_PORT...",
		Short: "Forward local ports to ports of a pod",
		Long: "Listens on local ports and connects each accepted connection to a port on the pod's loopback,\n" +
			"dialled inside the pod's network namespace, so the pod needs no hostPort. LOCAL:REMOTE picks the\n" +
			"local port, REMOTE alone uses the same number, :REMOTE (or 0:REMOTE) a random free one. A port\n" +
			"the pod refuses fails that connection only. Ends on Ctrl-C, or when the pod is stopped or removed.",
		Example: "  sudo peapod port-forward web 8080:80\n" +
			"  sudo peapod port-forward web :80 5432 --address 127.0.0.1,10.0.0.5",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
			defer stop()
			return executePortForward(ctx, g, args[0], args[1:], addresses, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringSliceVar(&addresses, "address", []string{"localhost"},
		"addresses to listen on (comma-separated IPs or localhost); localhost means 127.0.0.1 and ::1")
	return cmd
}

// portPair is one LOCAL:REMOTE of port-forward (local 0: a random port).
type portPair struct {
	local, remote int
}

// parsePortPairs parses kubectl's port specs: REMOTE, LOCAL:REMOTE, :REMOTE.
func parsePortPairs(specs []string) ([]portPair, error) {
	var out []portPair
	for _, s := range specs {
		localS, remoteS, hasLocal := strings.Cut(s, ":")
		if !hasLocal {
			localS, remoteS = s, s
		}
		remote, err := strconv.Atoi(remoteS)
		if err != nil || remote < 1 || remote > 65535 {
			return nil, fmt.Errorf("invalid port %q: the remote port must be a number in 1-65535", s)
		}
		local := 0
		if localS != "" {
			local, err = strconv.Atoi(localS)
			if err != nil || local < 0 || local > 65535 {
				return nil, fmt.Errorf("invalid port %q: the local port must be a number in 0-65535", s)
			}
		}
		out = append(out, portPair{local: local, remote: remote})
	}
	return out, nil
}

// listenAddrs turns --address into IPs to listen on, and which of them
// may fail (::1 of "localhost" on a host without IPv6, as kubectl allows).
func listenAddrs(addresses []string) (ips []string, optional map[string]bool, err error) {
	optional = map[string]bool{}
	seen := map[string]bool{}
	add := func(ip string, opt bool) {
		if !seen[ip] {
			seen[ip] = true
			ips = append(ips, ip)
			optional[ip] = opt
		}
	}
	for _, a := range addresses {
		a = strings.TrimSpace(a)
		if a == "localhost" {
			add("127.0.0.1", false)
			add("::1", true)
			continue
		}
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, nil, fmt.Errorf("invalid --address %q: an IP address or localhost", a)
		}
		add(ip.String(), false)
	}
	if len(ips) == 0 {
		return nil, nil, errors.New("--address needs at least one address")
	}
	return ips, optional, nil
}

// forwarder serves every listener of one port-forward.
type forwarder struct {
	d      *pod.PortDialer
	out    io.Writer // "Forwarding from", "Handling connection for"
	errOut io.Writer // per-connection errors
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open local connections, closed at the end
	closed bool
	wg     sync.WaitGroup
}

func executePortForward(ctx context.Context, g *globals, name string, specs, addresses []string, out, errOut io.Writer) error {
	pairs, err := parsePortPairs(specs)
	if err != nil {
		return err
	}
	ips, optional, err := listenAddrs(addresses)
	if err != nil {
		return err
	}
	m, err := g.manager()
	if err != nil {
		return err
	}
	d, err := m.PortDialer(g.namespace, name)
	if err != nil {
		return err
	}
	f := &forwarder{d: d, out: out, errOut: errOut, conns: map[net.Conn]struct{}{}}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
		f.closeAll()
	}()
	// Cancelled first (defers run last-in first-out): dials in flight end.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range pairs {
		local := p.local
		for _, ip := range ips {
			// Every address of a pair gets the port the first one got.
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(local)))
			if err != nil {
				if optional[ip] {
					continue
				}
				return fmt.Errorf("unable to listen on %s port %d: %w", ip, local, err)
			}
			if local == 0 {
				local = l.Addr().(*net.TCPAddr).Port
			}
			listeners = append(listeners, l)
			fmt.Fprintf(out, "Forwarding from %s -> %d\n", l.Addr(), p.remote)
			f.wg.Add(1)
			go f.serve(ctx, l, local, p.remote)
		}
	}
	werr := d.Watch(ctx)
	if werr != nil {
		return fmt.Errorf("lost connection to pod: %w", werr)
	}
	return nil
}

// serve accepts on l until it is closed.
func (f *forwarder) serve(ctx context.Context, l net.Listener, local, remote int) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		fmt.Fprintf(f.out, "Handling connection for %d\n", local)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			pc, err := f.d.Dial(ctx, remote)
			if err != nil {
				// That connection fails; the forward keeps serving.
				fmt.Fprintf(f.errOut, "error forwarding port %d to %s: %v\n", remote, f.d, err)
				c.Close()
				return
			}
			if !f.track(pc) {
				c.Close()
				pc.Close()
				return
			}
			defer f.untrack(pc)
			pod.Splice(c, pc)
		}()
	}
}

// track remembers an open connection (false once closeAll ran).
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// closeAll closes every open connection (which ends its copying, and so
// its connection in the pod) and waits for the goroutines; the listeners
// are closed first by the caller.
func (f *forwarder) closeAll() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
