package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// NormalizeName returns the short, familiar form of an image name:
// "busybox" and "docker.io/library/busybox" both become "busybox:latest".
func NormalizeName(ref string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	repo := parsed.Context().RepositoryStr()
	if reg := parsed.Context().RegistryStr(); reg != name.DefaultRegistry {
		repo = reg + "/" + repo
	} else {
		repo = strings.TrimPrefix(repo, "library/")
	}
	if d, ok := parsed.(name.Digest); ok {
		return repo + "@" + d.DigestStr(), nil
	}
	return repo + ":" + parsed.Identifier(), nil
}
