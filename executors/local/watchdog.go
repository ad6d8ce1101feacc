package local

import (
	"crypto/rand"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/nixflow/nixflow/executors/watchdog"
)

// A nixflow killed with SIGKILL, or crashing, cannot stop its steps. So
// before its first step starts, a local executor starts a guard (package
// watchdog) of kind "steps". When nixflow is gone, the guard kills the
// executor's steps, found by the cookies in their environments, which
// share the executor's token, and by their cgroups. The scan reads
// /proc: Linux only (the guard is started there only). Close stops the
// guard: the steps are over.
//
// A guard costs one process start (a few ms, most of them in parallel
// with the run) for each local executor of a run that runs a step, and
// nothing per step.

// stepsKind is the kind of the local executors' guards; its arguments
// are the executor's token and the prefix of its steps' cgroup
// directories (empty: none).
const stepsKind = "steps"

func init() {
	watchdog.Register(stepsKind, func(args, _ []string) {
		if len(args) == 2 && args[0] != "" {
			sweepSteps(args[0], args[1])
		}
	})
}

// guard is an executor's side of its watchdog.
type guard struct {
	// token starts the cookie of every step of the executor.
	token string
	log   hclog.Logger

	once  sync.Once
	guard *watchdog.Guard
}

func newGuard(log hclog.Logger) *guard {
	return &guard{token: rand.Text(), log: log}
}

// cookie returns a new cookie for a step (see cookieVar); nil d, one
// outside an executor.
func (d *guard) cookie() string {
	if d == nil {
		return newCookie()
	}
	return d.token + "." + newCookie()
}

// start starts the guard, once, if this process has guards
// (watchdog.Enable) and it can run here; cgroups are where the steps'
// cgroups are made, if they are. A guard that cannot start is logged:
// the steps run unguarded.
func (d *guard) start(cgroups *cgroupBase) {
	if d == nil || !watchdogSupported {
		return
	}
	d.once.Do(func() {
		g, err := watchdog.Start(stepsKind, nil, d.token, cgroups.prefixOf(d.token))
		if err != nil && d.log != nil {
			d.log.Warn("no watchdog: the steps will not be stopped if nixflow is killed", "error", err)
		}
		d.guard = g
	})
}

// stop ends the guard, once the executor's steps are over.
func (d *guard) stop() {
	if d == nil {
		return
	}
	d.once.Do(func() {}) // no start from now on
	d.guard.Stop()
}
