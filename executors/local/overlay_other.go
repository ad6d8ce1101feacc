//go:build !linux

package local

import "errors"

// Overlay mounts are a Linux feature: elsewhere workspaces are copies.

func mountOverlay(lower, layers, target string) error {
	return errors.New("overlay mounts are not available on this system")
}

func unmountOverlay(target, layers string) error { return removeTree(layers) }

// UnmountUnder does nothing where workspaces are never mounts.
func UnmountUnder(dir string) error { return nil }
