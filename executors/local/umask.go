package local

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// Umask is the process's file mode creation mask, as /proc/self/status
// tells it (Linux 4.7 and later), read once; known is false where it
// cannot be read. Reading it with the umask system call means setting
// it, which would race with the other goroutines that create files.
var Umask = sync.OnceValues(func() (mask os.FileMode, known bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("Umask:")); ok {
			m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			return os.FileMode(m), err == nil
		}
	}
	return 0, false
})

// umaskKeeps reports whether the umask leaves every bit of perm set, so
// that a directory made with perm needs no chmod. When the umask cannot
// be read, it answers false.
func umaskKeeps(perm os.FileMode) bool {
	mask, known := Umask()
	return known && mask&perm == 0
}
