//go:build !linux

package local

import (
	"context"
	"errors"
)

// Overlay mounts are a Linux feature: elsewhere workspaces are copies.

var errNoOverlay = errors.New("overlay mounts are not available on this system")

func mountOverlay(lower, layers, target string) error { return errNoOverlay }

func mountFUSEOverlay(ctx context.Context, lower, layers, target string) error { return errNoOverlay }

func unmountOverlay(target, layers string, fuse bool, reuse func()) error {
	return removeTree(layers)
}

// UnmountUnder does nothing where workspaces are never mounts.
func UnmountUnder(dir string) error { return nil }
