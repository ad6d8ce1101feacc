package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Spare temporary directories. Making and removing files and
// directories can be most of what a short job costs: on ext4 without a
// journal (a virtual machine's disk, often) the allocator of a new inode
// passes over every inode freed in the last minutes, reading its record,
// so that a run of a thousand short jobs slows down as it goes. So a
// job's temporary directory, with its control files (which the executor
// makes with it), is not removed when the job ends if it is exactly as
// the executor made it and nothing the job started is left: it is moved
// under <RunDir>/spare/<executor>, the control files truncated, and the
// next job that starts takes it over with one rename. Close removes what
// is left. (The workspace is made and removed as before: it is what a
// job's steps hand to other programs, a container's bind mount say,
// which may use it after the job.)
//
// "Exactly as made" is checked against what the executor recorded when
// it made them (madeDir): the same directory and files (device and
// inode), with the same type and mode bits, owner and group, attribute
// flags a user can set, and extended attributes; the files with one link;
// nothing else in the directory. Anything else (a step's own file, a
// changed mode, a link to a control file) and the directory is removed as
// before, and the next job gets a new one.

// maxSpare bounds the spare directories kept for a run: as many as jobs
// end at once, in the steady state.
const maxSpare = 64

// spareSeq names executors' spare directories apart.
var spareSeq atomic.Uint64

// spareDirs are the spare temporary directories of an executor, by run
// and control files.
type spareDirs struct {
	mu   sync.Mutex
	dirs map[spareKey][]spareDir
	// on is set by New: the executors other backends make for their host
	// side (whose steps do not run through them) keep no spares.
	on bool
	// off tells that the file system of the runs cannot rename without
	// replacing: directories are made and removed as they were before.
	off bool
	// id names the executor's directory under each <RunDir>/spare.
	id string
}

type spareKey struct {
	runDir string
	names  string // the control files', joined
}

func newSpareKey(runDir string, names []string) spareKey {
	return spareKey{runDir, strings.Join(slices.Sorted(slices.Values(names)), "\x00")}
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
	return s.on && !s.off
}

// take moves a spare directory with the control files names to dst,
// which must not exist, and returns what it was made as; nil if there
// was none, for the caller to make dst.
func (s *spareDirs) take(runDir string, names []string, dst string) *madeDir {
	key := newSpareKey(runDir, names)
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

// give keeps dir, a temporary directory that a job ended with, for a
// later job, if made says what it was made as and it is still so (its
// control files then truncated); else it removes it, which is all that
// can fail. A nil s (a workspace of no executor) keeps nothing.
func (s *spareDirs) give(runDir string, dir string, made *madeDir) error {
	if s == nil || made == nil {
		return removeDir(dir)
	}
	key := newSpareKey(runDir, made.names)
	s.mu.Lock()
	off := s.off || len(s.dirs[key]) >= maxSpare
	if s.id == "" {
		s.id = strconv.FormatUint(spareSeq.Add(1), 10)
	}
	root := filepath.Join(runDir, "spare", s.id)
	s.mu.Unlock()
	if off || !made.emptied(dir) {
		return removeDir(dir)
	}
	spare := filepath.Join(root, strconv.FormatUint(spareSeq.Add(1), 10))
	err := renameNew(dir, spare)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(root, 0o700); err == nil {
			err = renameNew(dir, spare)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirs == nil {
		s.dirs = map[spareKey][]spareDir{}
	}
	if _, ok := s.dirs[key]; !ok {
		// Recorded before anything is kept: Close then removes the
		// directory made above, whatever happens next.
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

// remove removes every spare directory, with the executor's directory
// under each <RunDir>/spare, and that directory once empty.
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
		root := filepath.Join(runDir, "spare")
		if err := os.Remove(filepath.Join(root, s.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove spare directories: %w", err))
		}
		_ = os.Remove(root) // another executor's may still be there
	}
	s.dirs = nil
	return errors.Join(errs...)
}
