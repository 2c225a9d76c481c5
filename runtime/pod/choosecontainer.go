package pod

import "fmt"

// ChooseContainer is container, or when it is "" the pod's default
// container (View.DefaultContainer: kubectl's rule), with kubectl's line
// about the choice written to the manager's warning stream (stderr).
func (m *Manager) ChooseContainer(v *View, container string) (string, error) {
	if container != "" {
		return container, nil
	}
	name, note, err := v.DefaultContainer()
	if err != nil {
		return "", err
	}
	if note != "" {
		fmt.Fprintln(m.o.Warn, note)
	}
	return name, nil
}
