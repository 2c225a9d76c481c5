package pod

import (
	"errors"

	"github.com/peapod/peapod/cgroups"
	"github.com/peapod/peapod/internal/kfeature"
)

// explainCgroups adds `peapod check`'s fix to a cgroup driver that cannot
// work on this host (a missing hierarchy or controller); a bad driver name
// is the user's and passes unchanged.
func explainCgroups(err error) error {
	if errors.Is(err, cgroups.ErrNoController) || errors.Is(err, cgroups.ErrUnsupported) {
		return kfeature.Cgroups.Explain(err)
	}
	return err
}
