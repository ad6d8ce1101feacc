package main

import "fmt"

// sinkWarning returns a function that reports, on stderr, that writing
// what (a job's log, the events file) failed: the run goes on, and its
// summary is still printed.
func (a *app) sinkWarning(what string) func(error) {
	return func(err error) {
		fmt.Fprintf(a.stderr, "warning: %s failed: %v (the run goes on without it)\n", what, err)
	}
}
