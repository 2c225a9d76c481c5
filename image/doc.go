// Package image is peapod's content-addressed image store.
//
// It imports a plain root filesystem tar, a `docker save` archive or an OCI
// image layout (packed as a tar, or as a directory), unpacks every layer once
// into a directory that overlayfs can use directly as a lower layer, and keeps
// a small JSON record per image plus a names index.
//
// On-disk layout, under the store directory (<--root>/images):
//
//	.lock                  flock taken by Import and Remove
//	layers/<diffid hex>/   one unpacked layer; whiteouts are overlay-native
//	images/<id hex>.json   one image record (layers, config subset, sizes)
//	names.json             name -> image ID
//	tmp/                   staging area; anything here without the lock is debris
//
// Only the CLI links this package: the supervisor receives plain layer paths.
package image
