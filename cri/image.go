package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

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
