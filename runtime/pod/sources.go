package pod

import (
	"path/filepath"

	"github.com/peapod/peapod/manifest"
	"github.com/peapod/peapod/runtime/state"
)

// sourcesFile holds, in the pod's record dir, the ConfigMaps and Secrets the
// pod references: peapod has no API server to read them from again. It is
// written mode 0600 (state.WriteJSON), as it may hold secret values, and
// goes with the pod dir on rm.
const sourcesFile = "sources.json"

// saveSources stores the pod's ConfigMaps and Secrets; nothing when the pod
// references none.
func (m *Manager) saveSources(rec *state.Record, src *manifest.Sources) error {
	if src == nil || len(src.ConfigMaps)+len(src.Secrets) == 0 {
		return nil
	}
	return state.WriteJSON(filepath.Join(m.podDir(rec.UID), sourcesFile), src)
}
