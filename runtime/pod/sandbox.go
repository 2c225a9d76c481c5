package pod

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/peapod/peapod/cni"
	"github.com/peapod/peapod/runtime/state"
	corev1 "k8s.io/api/core/v1"
)

// Entry points for the CRI server (package cri). A CRI pod sandbox is a
// peapod pod with no app containers yet: its namespace pins, network and a
// resident supervisor (restartPolicy Always with nothing to run is a
// Running pod that only finishes when stopped) exist before the kubelet
// creates its first container, as the CRI requires.

// CreateSandbox creates p (which may have no containers) and maps ports
// on the pod's IP. Port mappings are given apart from p because a sandbox
// has no container whose ports[] could carry them, and so is the QoS class
// that places its cgroup (a sandbox has no containers to compute it from).
// On error nothing of the pod remains.
func (m *Manager) CreateSandbox(p *corev1.Pod, ports []cni.PortMapping, class corev1.PodQOSClass) (*View, error) {
	if len(ports) > 0 && !p.Spec.HostNetwork && m.o.Chain != nil {
		return nil, fmt.Errorf("pod %s/%s: port mappings need the built-in network; this root uses CNI chain %q", p.Namespace, p.Name, m.o.Chain.Name())
	}
	rec, err := m.create(p, nil, StartWait{}, class)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) && rec != nil {
			// Nothing but a supervisor with no container ran: a start error
			// is a broken sandbox, not a pod to keep.
			if rerr := m.Remove(rec.Namespace, rec.Name, true); rerr != nil {
				err = fmt.Errorf("%w (and removing it failed: %v)", err, rerr)
			}
		}
		return nil, err
	}
	if len(ports) > 0 && !p.Spec.HostNetwork {
		ip, perr := netip.ParseAddr(rec.IP)
		if perr == nil {
			perr = cni.MapPorts(m.o.Network, rec.UID, ip, ports)
		}
		if perr != nil {
			perr = fmt.Errorf("failed to map host ports of pod %s/%s: %w", p.Namespace, p.Name, perr)
			if rerr := m.Remove(rec.Namespace, rec.Name, true); rerr != nil {
				perr = fmt.Errorf("%w (and removing it failed: %v)", perr, rerr)
			}
			return nil, perr
		}
	}
	return m.view(rec), nil
}

// GetByUID returns the view of the pod with that uid (a lost supervisor is
// replaced, as Get does), or ErrNotFound.
func (m *Manager) GetByUID(uid string) (*View, error) {
	// Only uids newUID made were ever stored; anything else (a '/', "..")
	// must not become a path.
	if !isUID(uid) {
		return nil, fmt.Errorf("pod with uid %q: %w", uid, ErrNotFound)
	}
	rec, err := state.ReadRecord(m.recordPath(uid))
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("pod with uid %q: %w", uid, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return m.adoptIfLost(m.view(rec)), nil
}

// isUID reports whether s has the form newUID makes (8-4-4-4-12 lower hex).
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// RunDir is the volatile directory of the pod with that uid (its pins,
// sockets and /etc files).
func (m *Manager) RunDir(uid string) string { return m.runDir(uid) }

// ImagesDir is where the root's image store keeps its blobs and layers;
// PodsDir holds the pods' writable layers, volumes and logs.
func (m *Manager) ImagesDir() string { return m.dirs().ImagesDir() }

// PodsDir: see ImagesDir.
func (m *Manager) PodsDir() string { return m.dirs().PodsDir() }
