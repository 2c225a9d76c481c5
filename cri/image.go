package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/peapod/peapod/image"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageFsInfo reports the bytes and inodes the image store and the pods'
// directories use. The kubelet's image GC reads it, and the CRI client
// (k8s.io/cri-client, used by critest) calls it to check the image service
// answers at all.
func (s *Server) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	images, err := usage(s.m.ImagesDir())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	pods, err := usage(s.m.PodsDir())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{images},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{pods},
	}, nil
}

// usage sums the allocated bytes and counts the inodes under dir (a
// missing dir uses nothing: the image store is created on first import).
func usage(dir string) (*runtimeapi.FilesystemUsage, error) {
	var bytes, inodes uint64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		inodes++
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			bytes += uint64(st.Blocks) * 512 // st_blocks counts 512-byte units
		} else {
			bytes += uint64(fi.Size())
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to measure %q: %w", dir, err)
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}, nil
}

// imageUser splits an image's User ("uid", "uid:gid", "name",
// "name:group") into what ImageStatus reports: a numeric uid or a name.
func imageUser(user string) (*runtimeapi.Int64Value, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &runtimeapi.Int64Value{Value: n}, ""
	}
	return nil, u
}

// criImage is the CRI form of a stored image.
func criImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{Id: img.ID, Size: uint64(img.Size), RepoDigests: img.RepoDigests, Spec: &runtimeapi.ImageSpec{Image: img.ID}}
	for _, n := range img.Names {
		if full, err := image.FullName(n); err == nil && !strings.Contains(full, "@") {
			out.RepoTags = append(out.RepoTags, full)
		} else if err == nil {
			out.RepoDigests = append(out.RepoDigests, full)
		}
	}
	out.Uid, out.Username = imageUser(img.Config.User)
	return out
}

// ListImages lists the stored images (only the one filter.image names).
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	st, err := s.images()
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	if ref := req.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := st.Get(ref)
		if errors.Is(err, image.ErrNotFound) {
			return resp, nil
		}
		if err != nil {
			return nil, imageError(err, ref)
		}
		resp.Images = append(resp.Images, criImage(img))
		return resp, nil
	}
	imgs, err := st.List()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "failed to list images: %v", err)
	}
	for _, img := range imgs {
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// imageError maps an image store error of ref to a gRPC status.
func imageError(err error, ref string) error {
	switch {
	case errors.Is(err, image.ErrNotFound):
		return status.Errorf(codes.NotFound, "image %q: %v", ref, err)
	case errors.Is(err, image.ErrAmbiguous):
		return status.Errorf(codes.InvalidArgument, "image %q: %v", ref, err)
	case errors.Is(err, image.ErrInUse):
		return status.Errorf(codes.FailedPrecondition, "image %q: %v", ref, err)
	case strings.Contains(err.Error(), "invalid image name"):
		return status.Errorf(codes.InvalidArgument, "image %q: %v", ref, err)
	}
	return status.Errorf(codes.Internal, "image %q: %v", ref, err)
}

// ImageStatus reports an image with its user resolved (the kubelet checks
// runAsNonRoot against it); an image that is not stored is no error, only
// no image.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "missing")
	}
	st, err := s.images()
	if err != nil {
		return nil, err
	}
	img, err := st.Get(ref)
	if errors.Is(err, image.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, imageError(err, ref)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.Verbose {
		resp.Info = map[string]string{"info": string(img.ConfigJSON)}
	}
	return resp, nil
}

// authOf turns the kubelet's AuthConfig into the puller's authenticator
// (nil: Docker's own config on this host, as peapod image pull).
func authOf(a *runtimeapi.AuthConfig) authn.Authenticator {
	if a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "") {
		return nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// SetRegistries makes pulls use cfg's mirrors, servers and TLS settings
// (peapod-cri's --registry-config); nil is none. Call it before serving.
func (s *Server) SetRegistries(cfg *image.RegistryConfig) {
	s.registries = cfg
}

// PullImage pulls an image with the credentials the kubelet passes, through
// the registries' mirrors, and returns its id.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "missing")
	}
	st, err := s.images()
	if err != nil {
		return nil, err
	}
	img, err := st.Pull(ctx, ref, image.PullOptions{Auth: authOf(req.Auth), Registries: s.registries})
	if err != nil {
		if strings.Contains(err.Error(), "invalid image name") {
			return nil, status.Errorf(codes.InvalidArgument, "%v", err)
		}
		// The caller's deadline or cancellation ended the pull: say so with
		// its code (the kubelet and critest read DeadlineExceeded), whatever
		// the HTTP client made of it. Racing the client's own timer, the
		// server answers first when the deadline is short, so this code is
		// what the caller sees.
		if ctx.Err() != nil {
			return nil, status.Errorf(status.FromContextError(ctx.Err()).Code(), "%v", err)
		}
		return nil, status.Errorf(codes.Unknown, "%v", err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// RemoveImage removes an image no container uses; an image that is not
// stored is removed already.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "missing")
	}
	st, err := s.images()
	if err != nil {
		return nil, err
	}
	err = st.Remove(ref, s.containersUsing)
	if errors.Is(err, image.ErrNotFound) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, imageError(err, ref)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// containersUsing names the containers whose rootfs is made of image id
// (its layers are their overlay's lower directories), and the pods of
// this root that peapod's own CLI made with it.
func (s *Server) containersUsing(id string) []string {
	out := s.m.PodsUsingImage(id)
	all, _ := s.allContainers()
	for _, c := range all {
		if c.imageID() == id {
			out = append(out, "container "+c.id())
		}
	}
	return out
}

// images opens the manager's image store; failing is Internal, as the
// kubelet can do nothing about it.
func (s *Server) images() (*image.Store, error) {
	st, err := s.m.Images()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "failed to open the image store: %v", err)
	}
	return st, nil
}
