package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// The exit statuses of nixflow, in one place.
const (
	// ExitOK: every job succeeded (allowed failures included).
	ExitOK = 0
	// ExitFailed: a job failed.
	ExitFailed = 1
	// ExitUsage: bad input (workflow, flags, arguments) or an evaluation
	// error; nothing ran.
	ExitUsage = 2
	// ExitInfra: infrastructure failed (an executor could not start, a
	// dependency could not be built, the run directory is unusable).
	ExitInfra = 3
	// ExitInterrupted: the run was interrupted (Ctrl-C, SIGTERM).
	ExitInterrupted = 130
)

// exitError carries an exit status and, optionally, hints for the user.
// The root command prints it once.
type exitError struct {
	code  int
	err   error
	hints []string
	// quiet: the error was already reported (for example, a run summary).
	quiet bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(err error, hints ...string) error {
	return &exitError{code: ExitUsage, err: err, hints: hints}
}

func infraError(err error, hints ...string) error {
	return &exitError{code: ExitInfra, err: err, hints: hints}
}

// interruptedError: a stop signal (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) came
// before anything ran.
func interruptedError(while string) error {
	return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted while %s: nothing ran", while)}
}

// detailed is an error made of a headline and a tool's report (Nix's
// evaluation errors).
type detailed interface {
	Headline() string
	Details() string
}

// report prints an error the way every nixflow error is printed:
// `error: ...` lines (one per problem), then `hint: ...` lines, and
// returns the exit status.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.quiet {
			return code
		}
	}
	var d detailed
	if errors.As(err, &d) {
		// One problem with a tool's own report under it, indented.
		fmt.Fprintf(stderr, "error: %s\n", d.Headline())
		for _, line := range strings.Split(strings.TrimRight(d.Details(), "\n"), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
	} else {
		// One line per problem.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "error: %s\n", line)
		}
	}
	if ee != nil {
		for _, h := range ee.hints {
			fmt.Fprintf(stderr, "hint: %s\n", h)
		}
	}
	return code
}
