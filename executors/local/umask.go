package local

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// umask is the process's file mode creation mask, as /proc/self/status
// tells it (Linux 4.7 and later), read once: reading it with the umask
// system call means setting it, which would race with the other
// goroutines that create files.
type umask struct {
	once  sync.Once
	mask  os.FileMode
	known bool
}

// umaskKeeps reports whether the umask leaves every bit of perm set, so
// that a directory made with perm needs no chmod. When the umask cannot
// be read, it answers false.
func (e *Executor) umaskKeeps(perm os.FileMode) bool {
	u := &e.umask
	u.once.Do(func() {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for line := range bytes.Lines(data) {
			if v, ok := bytes.CutPrefix(line, []byte("Umask:")); ok {
				m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
				u.mask, u.known = os.FileMode(m), err == nil
				return
			}
		}
	})
	return u.known && u.mask&perm == 0
}
