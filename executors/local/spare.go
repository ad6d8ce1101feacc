package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

// Spare directories. Making and removing files and directories can be
// most of what a short job costs: on ext4 without a journal (a virtual
// machine's disk, often) the allocator of a new inode passes over every
// inode freed in the last minutes, reading its record, so that a run of
// a thousand short jobs slows down as it goes. So a job's workspace and
// temporary directory (with its control files, which the executor makes
// with it) are not removed when the job ends, if they are exactly as the
// executor made them, and nothing the job started is left: they are
// moved under <RunDir>/spare, the control files truncated, and the next
// job that starts takes them over with one rename each. Close removes
// what is left.
//
// "Exactly as made" is checked against what the executor recorded when
// it made them (madeDir): the same directory and files (device and
// inode), with the same type and mode bits, owner and group, attribute
// flags and extended attribute names; the files with one link; nothing
// else in the directory. Anything else (a step's own file, a changed
// mode, a link to a control file) and the directory is removed as
// before, and the next job gets new ones.

// spareKind tells a job's two directories apart.
type spareKind int

const (
	spareTemp spareKind = iota // a temporary directory with its control files
	spareWork                  // an empty workspace
)

// maxSpare bounds the spare directories of a kind kept for a run: as many
// as jobs end at once, in the steady state.
const maxSpare = 64

// spareSeq names spare directories apart, across the executors of a run.
var spareSeq atomic.Uint64

// spareDirs are the spare directories of an executor, by run and kind.
type spareDirs struct {
	mu   sync.Mutex
	dirs map[spareKey][]spareDir
	// off tells that the file system of the runs cannot rename without
	// replacing: directories are made and removed as they were before.
	off bool
}

type spareKey struct {
	runDir string
	kind   spareKind
}

// spareDir is a directory waiting for a job, and what it was like when
// it was made.
type spareDir struct {
	path string
	made *madeDir
}

// usable reports whether directories made now may serve later jobs.
func (s *spareDirs) usable() bool {
	if !spareSupported {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.off
}

// take moves a spare directory of kind to dst, which must not exist, and
// returns what it was made as; nil if there was none, for the caller to
// make dst.
func (s *spareDirs) take(runDir string, kind spareKind, dst string) *madeDir {
	key := spareKey{runDir, kind}
	s.mu.Lock()
	list := s.dirs[key]
	if len(list) == 0 {
		s.mu.Unlock()
		return nil
	}
	d := list[len(list)-1]
	s.dirs[key] = list[:len(list)-1]
	s.mu.Unlock()
	if err := renameNew(d.path, dst); err != nil {
		_ = removeTree(d.path)
		return nil
	}
	return d.made
}

// give keeps dir, a directory of kind that a job ended with, for a later
// job, if made says what it was made as and it is still so (its control
// files then truncated); else it removes it, which is all that can fail.
func (s *spareDirs) give(runDir string, kind spareKind, dir string, made *madeDir) error {
	key := spareKey{runDir, kind}
	s.mu.Lock()
	off := s.off || len(s.dirs[key]) >= maxSpare
	s.mu.Unlock()
	if made == nil || off || !made.emptied(dir) {
		return removeDir(dir)
	}
	root := filepath.Join(runDir, "spare")
	spare := filepath.Join(root, strconv.FormatUint(spareSeq.Add(1), 10))
	err := renameNew(dir, spare)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.Mkdir(root, 0o700); err == nil || errors.Is(err, os.ErrExist) {
			err = renameNew(dir, spare)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirs == nil {
		s.dirs = map[spareKey][]spareDir{}
	}
	if _, ok := s.dirs[key]; !ok {
		// Recorded before anything is kept: Close then removes
		// runDir/spare, made above, whatever happens next.
		s.dirs[key] = nil
	}
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		s.off = true
		return removeDir(dir)
	case err != nil:
		return removeDir(dir)
	case !made.is(spare):
		// Not the directory checked: something took its place meanwhile.
		return removeDir(spare)
	}
	s.dirs[key] = append(s.dirs[key], spareDir{spare, made})
	return nil
}

// remove removes every spare directory, and runDir/spare for each run.
func (s *spareDirs) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	runs := map[string]bool{}
	for key, list := range s.dirs {
		runs[key.runDir] = true
		for _, d := range list {
			if err := removeDir(d.path); err != nil {
				errs = append(errs, fmt.Errorf("remove spare directory: %w", err))
			}
		}
	}
	for runDir := range runs {
		if err := os.Remove(filepath.Join(runDir, "spare")); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove spare directories: %w", err))
		}
	}
	s.dirs = nil
	return errors.Join(errs...)
}
