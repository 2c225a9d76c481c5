package manifest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxConfigMapSize caps the total size of a ConfigMap's values, as the API
// server's validation does (the same 1 MiB as a Secret's, corev1.MaxSecretSize):
// the object has to fit in etcd there; here it is copied into every pod
// record that uses it and materialised in memory for secrets.
const maxConfigMapSize = corev1.MaxSecretSize

// SetConfigMapDefaults applies the API server's defaults: the namespace.
func SetConfigMapDefaults(cm *corev1.ConfigMap) {
	if cm.Namespace == "" {
		cm.Namespace = defaultNamespace
	}
}

// SetSecretDefaults applies what the API server does on write: the
// namespace, type Opaque, and stringData merged into data (stringData wins
// on a key present in both) and then dropped, as it is write-only.
func SetSecretDefaults(s *corev1.Secret) {
	if s.Namespace == "" {
		s.Namespace = defaultNamespace
	}
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

// ValidateConfigMap checks a defaulted ConfigMap as the API server does: its
// metadata, every key of data and binaryData a valid key (IsConfigMapKey:
// [-._a-zA-Z0-9]+, not "." or "..", nor starting with ".."), no key in both,
// and the values' total size at most 1 MiB.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(&cm.ObjectMeta)
	total := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		errs = append(errs, configMapKey(field.NewPath("data").Key(k), k)...)
		total += len(cm.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		errs = append(errs, configMapKey(field.NewPath("binaryData").Key(k), k)...)
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, "duplicate of key present in binaryData"))
		}
		total += len(cm.BinaryData[k])
	}
	if total > maxConfigMapSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxConfigMapSize))
	}
	return errs
}

// ValidateSecret checks a defaulted Secret as the API server does for the
// types peapod can use: metadata, keys, 1 MiB in all. A Secret of a
// well-known type keeps the keys that type requires.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta)
	total := 0
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		errs = append(errs, configMapKey(field.NewPath("data").Key(k), k)...)
		total += len(s.Data[k])
	}
	if total > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", corev1.MaxSecretSize))
	}
	required := map[corev1.SecretType][]string{
		corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
		corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
		corev1.SecretTypeBasicAuth:        nil,
		corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
		corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
	}
	for _, k := range required[s.Type] {
		if _, ok := s.Data[k]; !ok {
			errs = append(errs, field.Required(field.NewPath("data").Key(k), ""))
		}
	}
	return errs
}

// configMapKey turns IsConfigMapKey's messages into Invalid errors.
func configMapKey(p *field.Path, k string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(p, k, msg))
	}
	return errs
}

// objectID names an object in an error: `ConfigMap "ns/name"`.
func objectID(kind, ns, name string) string {
	return fmt.Sprintf("%s %q", kind, strings.TrimPrefix(ns+"/"+name, "/"))
}
