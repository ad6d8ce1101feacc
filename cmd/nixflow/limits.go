package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// What a running job holds, at most, of the limits a user may be under:
// open files (its step's output pipes, their process descriptor, its
// cgroup, what wakes its output's reader: an eventfd, a pipe elsewhere
// than Linux; its log file, what a copy opens) and processes (its step's
// bash and what it starts, the thread that waits for it and the one that
// reads its output).
var filesPerJob = func() int {
	if runtime.GOOS == "linux" {
		return 9
	}
	return 10
}()

const (
	// processesPerJob: bash, what it starts, and nixflow's threads.
	processesPerJob = 3 + threadsPerJob
	// filesReserve and processesReserve are nixflow's own, beside its jobs.
	filesReserve     = 64
	processesReserve = 32
)

// threadsPerJob is how many of nixflow's threads a running job may hold:
// the reader of its output (local), blocked in a system call, and the
// wait for its step's exit where the kernel has no pidfds (before Linux
// 5.3; else Go's poller waits for it).
const threadsPerJob = 2

// raiseThreadLimit lets the Go runtime start a thread for each that the
// jobs running at once (at most parallel, 0 for all of jobs) may hold,
// where its default limit (10,000) would end the run. The kernel's own
// limits still apply (see parallelLimit).
func raiseThreadLimit(parallel, jobs int) {
	if parallel <= 0 || parallel > jobs {
		parallel = jobs
	}
	if need := threadsPerJob*parallel + 1000; need > 10000 {
		debug.SetMaxThreads(need)
	}
}

// parallelLimit is how many jobs may run at once under the process's
// limits on open files and on processes (ulimit -n, ulimit -u), and
// which limit says so; 0 when neither bounds them. Past it, jobs would
// fail with "too many open files", or nixflow itself could not start a
// thread.
func parallelLimit() (int, string) {
	limit, why := 0, ""
	var files syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &files) == nil && files.Cur < 1<<20 {
		if n := (int(files.Cur) - filesReserve) / filesPerJob; n < 1<<16 {
			limit, why = max(n, 1), fmt.Sprintf("the open-file limit (ulimit -n) is %d", files.Cur)
		}
	}
	if left, lim, ok := processesLeft(); ok {
		if p := (left - processesReserve) / processesPerJob; limit == 0 || p < limit {
			limit, why = max(p, 1), fmt.Sprintf("the process limit (ulimit -u) is %d, %d of them in use", lim, lim-left)
		}
	}
	return limit, why
}

// processesLeft is how many more processes (threads count) this user may
// start under RLIMIT_NPROC, and the limit; ok is false when it does not
// bound this process: infinite or large, or root's (the kernel lets root
// past it), or not on Linux (no /proc to count with).
func processesLeft() (left, limit int, ok bool) {
	if os.Geteuid() == 0 {
		return 0, 0, false
	}
	var r unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NPROC, &r) != nil || r.Cur >= 1<<16 {
		return 0, 0, false
	}
	dirs, err := filepath.Glob("/proc/[0-9]*/status")
	if err != nil || len(dirs) == 0 {
		return 0, 0, false
	}
	uid := strconv.Itoa(os.Getuid())
	used := 0
	for _, status := range dirs {
		data, err := os.ReadFile(status)
		if err != nil {
			continue
		}
		var real string
		threads := 1
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					real = f[0]
				}
			}
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				threads, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if real == uid {
			used += threads
		}
	}
	return int(r.Cur) - used, int(r.Cur), true
}
