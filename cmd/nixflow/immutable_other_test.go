//go:build !linux

package main

import "github.com/rogpeppe/go-internal/testscript"

// cmdImmutable fails: the immutable flag is Linux's, and the
// [immutable] condition is false elsewhere.
func cmdImmutable(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("immutable: no immutable flag on this system")
}

func immutableWorks() bool { return false }
