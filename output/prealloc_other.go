//go:build !linux

package output

import (
	"errors"
	"os"
)

// preallocate is not done here: logs are written as they come.
func preallocate(*os.File, int64, int64) error {
	return errors.ErrUnsupported
}
