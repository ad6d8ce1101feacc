//go:build !linux

package local

import "errors"

// Elsewhere directories serve one job only: telling one as made from one
// changed takes each system's own calls.
const spareSupported = false

type madeDir struct{ names []string }

func recordDir(dir string, names []string) *madeDir { return nil }

func (m *madeDir) emptied(dir string) bool { return false }

func (m *madeDir) is(path string) bool { return false }

func renameNew(old, new string) error { return errors.ErrUnsupported }
