package image

import "errors"

var (
	// ErrNotFound is returned when no image matches a reference.
	ErrNotFound = errors.New("image not found")
	// ErrAmbiguous is returned when an ID prefix matches more than one image.
	ErrAmbiguous = errors.New("image reference is ambiguous")
	// ErrInUse is returned by Remove while a pod still uses the image.
	ErrInUse = errors.New("image is in use")
	// ErrUnsafePath is returned for a tar entry that would be written, or
	// would link, outside the layer root, or through a symlink.
	ErrUnsafePath = errors.New("unsafe path in layer")
	// ErrTooManyLayers is returned by Import for an image with more layers
	// than one overlay mount can stack (MaxLayers).
	ErrTooManyLayers = errors.New("too many layers")
)
