package manifest

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/peapod/peapod/runtime/spec"
	corev1 "k8s.io/api/core/v1"
)

// processUser works out the process's uid, gid and supplementary groups:
// runAsUser/runAsGroup (container overrides pod), else the image's User.
// A numeric image user is used as is; a user *name* goes to Username for
// the init stage to resolve in the container's own /etc/passwd and
// /etc/group (which only exist inside the rootfs). Without runAsGroup or an
// image group the gid is 0 (containerd would look the uid's primary group
// up in the image; the init stage may refine this).
//
// podName, podNamespace and podUID name the pod in a runAsNonRoot refusal.
func processUser(podName, podNamespace, podUID string, podSC *corev1.PodSecurityContext, c *corev1.Container, cfg ImageConfig) (specs.User, error) {
	runAsUser, runAsGroup, nonRoot := effectiveIDs(podSC, c.SecurityContext)
	var u specs.User
	imgUID, imgGID, numeric := parseImageUser(cfg.User)
	switch {
	case runAsUser != nil:
		u.UID = uint32(*runAsUser)
	case numeric:
		u.UID, u.GID = imgUID, imgGID
	default:
		u.Username = cfg.User
	}
	if runAsGroup != nil {
		u.GID = uint32(*runAsGroup)
	}
	if podSC != nil {
		for _, g := range podSC.SupplementalGroups {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	if !nonRoot {
		return u, nil
	}
	// As the kubelet's verifyRunAsNonRoot at container creation, with its
	// words: refuse root, and refuse a user name whose uid cannot be
	// checked here. The pod is named as the kubelet's format.Pod does.
	pod := fmt.Sprintf("%s_%s(%s)", podName, podNamespace, podUID)
	if u.Username != "" {
		return u, configError(c, fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", u.Username, pod, c.Name))
	}
	if u.UID == 0 {
		return u, configError(c, fmt.Sprintf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod, c.Name))
	}
	return u, nil
}

// identityOf is what the init stage completes processUser's user with
// from the container's /etc/passwd and /etc/group, as containerd's CRI:
// without runAsGroup or an image group, the gid is the uid's primary group
// there, and the pod's supplementalGroupsPolicy (Merge by default) says
// whether the groups /etc/group lists the user in are added. Both add the
// primary gid to the supplementary groups.
func identityOf(podSC *corev1.PodSecurityContext, c *corev1.Container, cfg ImageConfig) spec.Identity {
	runAsUser, runAsGroup, _ := effectiveIDs(podSC, c.SecurityContext)
	id := spec.Identity{SupplementalGroupsPolicy: spec.GroupsMerge}
	if podSC != nil && podSC.SupplementalGroupsPolicy != nil && *podSC.SupplementalGroupsPolicy == corev1.SupplementalGroupsPolicyStrict {
		id.SupplementalGroupsPolicy = spec.GroupsStrict
	}
	if runAsGroup == nil {
		// An image's "uid:gid" names the gid, unless runAsUser replaced
		// the image's user (and with it its group).
		_, group, _ := strings.Cut(cfg.User, ":")
		id.GIDFromPasswd = runAsUser != nil || group == ""
	}
	return id
}

// effectiveIDs merges the pod and container security contexts as the API
// does: a container value overrides the pod's.
func effectiveIDs(podSC *corev1.PodSecurityContext, sc *corev1.SecurityContext) (uid, gid *int64, nonRoot bool) {
	if podSC != nil {
		uid, gid = podSC.RunAsUser, podSC.RunAsGroup
		nonRoot = podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
	}
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	return uid, gid, nonRoot
}

// parseImageUser parses "", "uid" or "uid:gid"; numeric is false when
// either part is a name.
func parseImageUser(user string) (uid, gid uint32, numeric bool) {
	if user == "" {
		return 0, 0, true
	}
	us, gs, hasGroup := strings.Cut(user, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	if !hasGroup {
		return uint32(u), 0, true
	}
	g, err := strconv.ParseUint(gs, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	return uint32(u), uint32(g), true
}
