package manifest

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RecursiveReadOnlySupported reports whether this kernel has
// mount_setattr(2) (Linux 5.12), which recursive read-only mounts need: a
// call with no mount to act on fails with ENOSYS only when it is missing.
// It is what the kubelet asks the runtime (its RecursiveReadOnlyMounts
// handler feature) and what decides a recursiveReadOnly: IfPossible.
var RecursiveReadOnlySupported = sync.OnceValue(func() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
})

// validateRecursiveReadOnly is the API server's
// validateMountRecursiveReadOnly: Enabled and IfPossible need readOnly and
// no mount propagation.
func validateRecursiveReadOnly(m corev1.VolumeMount, p *field.Path) field.ErrorList {
	if m.RecursiveReadOnly == nil {
		return nil
	}
	var errs field.ErrorList
	switch *m.RecursiveReadOnly {
	case corev1.RecursiveReadOnlyDisabled:
	case corev1.RecursiveReadOnlyEnabled, corev1.RecursiveReadOnlyIfPossible:
		if !m.ReadOnly {
			errs = append(errs, field.Forbidden(p, "may only be specified when readOnly is true"))
		}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			errs = append(errs, field.Forbidden(p, "may only be specified when mountPropagation is None or not specified"))
		}
	default:
		errs = append(errs, field.NotSupported(p, *m.RecursiveReadOnly, []corev1.RecursiveReadOnlyMode{
			corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyEnabled, corev1.RecursiveReadOnlyIfPossible}))
	}
	return errs
}

// recursiveReadOnly resolves a valid mount's mode as the kubelet's
// resolveRecursiveReadOnly does, with supported saying whether the
// runtime (this kernel) can: IfPossible falls back to a plain read-only
// mount, Enabled does not (the init stage then fails, naming the mount).
func recursiveReadOnly(m corev1.VolumeMount, supported bool) bool {
	if m.RecursiveReadOnly == nil || !m.ReadOnly {
		return false
	}
	switch *m.RecursiveReadOnly {
	case corev1.RecursiveReadOnlyEnabled:
		return true
	case corev1.RecursiveReadOnlyIfPossible:
		return supported
	}
	return false
}
