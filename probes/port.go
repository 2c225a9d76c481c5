package probes

import (
	"fmt"
	"strconv"

	"github.com/peapod/peapod/runtime/spec"
)

// ResolvePort turns a probe port (a number or a name) into a port number,
// as pkg/probe.ResolveContainerPort: a name is looked up in the container's
// declared ports. A port that does not resolve is a probe error, not a
// failure.
func ResolvePort(port string, ports []spec.Port) (int, error) {
	if n, err := strconv.Atoi(port); err == nil {
		return checkPort(n)
	}
	for _, p := range ports {
		if p.Name == port {
			return checkPort(int(p.ContainerPort))
		}
	}
	return 0, &kubeError{msg: fmt.Sprintf("port %q not found", port), kind: ErrPortNotFound}
}

// checkPort enforces 0 < port < 65536.
func checkPort(n int) (int, error) {
	if n > 0 && n < 65536 {
		return n, nil
	}
	return 0, &kubeError{msg: fmt.Sprintf("invalid port number: %d", n), kind: ErrInvalidPort}
}
