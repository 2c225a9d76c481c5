package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// floorVethName is the host end of a floor variant's pair: "ppbk<run>" for
// kernel-floor, "ppbu<run>" for floor-unpin (ids are "nb<run>-<variant>").
func floorVethName(id string) string {
	run, v, _ := strings.Cut(strings.TrimPrefix(id, "nb"), "-")
	if v == vFloorUnpin {
		return "ppbu" + run
	}
	return "ppbk" + run
}

// floorCycle is the least work any pod network does for the same end mark:
// one RTM_NEWLINK makes a veth pair whose peer is born inside the netns (as
// peapod's does, so it never shows up on the host) with the host end up,
// which costs nothing extra in that message and puts the device through the
// same close path on delete as a used port. With del, the host end is then
// deleted (the kernel takes the peer with it); RTM_DELLINK is acked only
// after netdev_run_todo has waited out the RCU grace periods, the cost every
// variant pays. Without del the pair is left to die with the netns.
func floorCycle(pin, id string, del bool) (string, error) {
	name := floorVethName(id)
	ns, err := netns.GetFromPath(pin)
	if err != nil {
		return "", fmt.Errorf("failed to open netns %q: %w", pin, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.Flags = net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	err = netlink.LinkAdd(veth)
	// Closed at once: an open fd would keep the netns alive after its unpin.
	ns.Close()
	if err != nil {
		return "", fmt.Errorf("failed to create veth %q with its peer in %q: %w", name, pin, err)
	}
	if !del {
		return name, nil
	}
	if err := netlink.LinkDel(veth); err != nil {
		return name, fmt.Errorf("failed to delete veth %q: %w", name, err)
	}
	return name, nil
}

// linkWatch is a subscription to the host's link events (RTNLGRP_LINK),
// opened before the clock starts so subscribing costs the cycle nothing.
type linkWatch struct {
	updates chan netlink.LinkUpdate // every link event on the host
	errs    chan error              // the first receive error, if any
	done    chan struct{}           // closed to end the subscription
}

func watchLinks() (*linkWatch, error) {
	w := &linkWatch{updates: make(chan netlink.LinkUpdate, 64), errs: make(chan error, 1), done: make(chan struct{})}
	err := netlink.LinkSubscribeWithOptions(w.updates, w.done, netlink.LinkSubscribeOptions{
		// Room for the other links a busy host adds and removes meanwhile;
		// an overflow (ENOBUFS) ends in polling, not in a wrong time.
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case w.errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to subscribe to link events: %w", err)
	}
	return w, nil
}

// close ends the subscription. The receiver may be blocked sending an
// update; it is drained until it closes the channel.
func (w *linkWatch) close() {
	close(w.done)
	go func() {
		for range w.updates {
		}
	}()
}

// awaitGone waits for the host link's RTM_DELLINK, then confirms by name.
// When a netns dies, its cleanup work (cleanup_net, run by a kernel
// workqueue after the last reference goes) unregisters its devices, and a
// veth takes its peer on the host along. unregister_netdevice_many unlists
// the name first and sends RTM_DELLINK after a synchronize_net (expedited,
// as RTNL is held), so the event marks the end a poll of the name would,
// without the poll's sleeps; neither waits for netdev_run_todo, which a
// synchronous delete's ack does. If the subscription fails (ENOBUFS on a
// busy host) it polls.
func (w *linkWatch) awaitGone(name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case u, ok := <-w.updates:
			if !ok {
				return waitLinkGone(name, time.Until(deadline))
			}
			if u.Header.Type == unix.RTM_DELLINK && u.Attrs().Name == name {
				return waitLinkGone(name, time.Until(deadline))
			}
		case err := <-w.errs:
			fmt.Fprintf(os.Stderr, "benchtool net: link events lost while waiting for %q (%v); polling instead\n", name, err)
			return waitLinkGone(name, time.Until(deadline))
		case <-timer.C:
			return fmt.Errorf("host veth %q: no RTM_DELLINK within %v", name, limit)
		}
	}
}
