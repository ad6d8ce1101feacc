package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// noGit is what copying a repository without git on PATH comes to: in a
// git repository (a .git in dir or above), an error, since without git
// nothing tells ignored files (a .env of secrets) from the others; the
// whole tree must not be copied without a word. Outside any repository
// the whole directory is copied, as it would be with git.
func noGit(dir string) error {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return &NoGitError{Dir: d}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil
		}
		d = parent
	}
}

// NoGitError is a repository to copy into a workspace without git on PATH.
type NoGitError struct{ Dir string }

func (e *NoGitError) Error() string {
	return fmt.Sprintf("git is not on PATH, and %s is a git repository: without git, nixflow cannot tell its ignored files (a .env, say) from the others, and copies nothing (hint: install git, or set copyRepo = false on jobs that need no file of the repository)", e.Dir)
}
