package manifest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePullSecrets checks that each of the pod's imagePullSecrets names
// a Secret of its namespace among secrets, of a type that holds registry
// credentials (kubernetes.io/dockerconfigjson or dockercfg). The kubelet
// only warns about a missing one; peapod has the whole manifest at hand,
// so a name that resolves to nothing is a mistake in it.
func validatePullSecrets(pod *corev1.Pod, secrets []*corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	for i, ref := range pod.Spec.ImagePullSecrets {
		p := field.NewPath("spec", "imagePullSecrets").Index(i).Child("name")
		if ref.Name == "" {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		s := findSecret(secrets, pod.Namespace, ref.Name)
		switch {
		case s == nil:
			e := field.NotFound(p, ref.Name)
			e.Detail = fmt.Sprintf("no Secret %q in namespace %q in the manifest", ref.Name, pod.Namespace)
			errs = append(errs, e)
		case s.Type != corev1.SecretTypeDockerConfigJson && s.Type != corev1.SecretTypeDockercfg:
			errs = append(errs, field.Invalid(p, ref.Name, fmt.Sprintf("Secret %q has type %q, want %q or %q",
				ref.Name, s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)))
		}
	}
	return errs
}

func findSecret(secrets []*corev1.Secret, ns, name string) *corev1.Secret {
	for _, s := range secrets {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

// PullSecrets returns the Secrets the pod's imagePullSecrets name, in
// order (LoadFiles has checked that each exists).
func (o *Objects) PullSecrets(pod *corev1.Pod) []*corev1.Secret {
	var out []*corev1.Secret
	for _, ref := range pod.Spec.ImagePullSecrets {
		if s := findSecret(o.Secrets, pod.Namespace, ref.Name); s != nil {
			out = append(out, s)
		}
	}
	return out
}
