package main

import (
	"runtime/debug"
	"testing"
)

// TestRaiseThreadLimit: a run lets Go start two threads for every job
// that may run at once (the reader of its output, and, without pidfds,
// the wait for its step, each blocked in a system call), past Go's
// default of 10,000,
// which would end a run of 5,000 jobs at once with "program exceeds
// 10000-thread limit". (Checked by hand with the limit lowered to 1,500
// and 1,000 jobs sleeping at once: that run ended so without the raise,
// and succeeded with it.)
func TestRaiseThreadLimit(t *testing.T) {
	defer debug.SetMaxThreads(debug.SetMaxThreads(10000))
	for _, tc := range []struct{ parallel, jobs, want int }{
		{parallel: 0, jobs: 100, want: 10000},
		{parallel: 0, jobs: 6000, want: 13000},
		{parallel: 8, jobs: 6000, want: 10000},
		{parallel: 7000, jobs: 6000, want: 13000},
		{parallel: 5000, jobs: 6000, want: 11000},
	} {
		debug.SetMaxThreads(10000)
		raiseThreadLimit(tc.parallel, tc.jobs)
		if got := debug.SetMaxThreads(10000); got != tc.want {
			t.Errorf("parallel %d, %d jobs: thread limit %d, want %d", tc.parallel, tc.jobs, got, tc.want)
		}
	}
}
