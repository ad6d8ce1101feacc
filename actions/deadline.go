package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// A job has one deadline, a context done when its timeout expires; every
// wait of the job (a step attempt, the wait between attempts) selects on
// it, so that whether the job's time ran out never depends on comparing
// clock readings taken at different moments (a wait rounded down to just
// before the deadline used to let one more attempt start).

var (
	errJobTimeout  = errors.New("job timeout")
	errStepTimeout = errors.New("step timeout")
)

// startDeadline starts the job's deadline and returns what releases it.
func (jr *jobRun) startDeadline() func() {
	if jr.job.Timeout <= 0 {
		jr.deadline = context.Background()
		return func() {}
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Duration(jr.job.Timeout), errJobTimeout)
	jr.deadline = ctx
	return cancel
}

// bounded is the job's interrupt, ended also by the job's timeout: the
// context of what the job does before its steps (its bash condition, the
// build of its deps, its workspace), which its timeout bounds as it
// bounds the steps. stop releases it.
func (jr *jobRun) bounded() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(jr.interrupt())
	after := context.AfterFunc(jr.deadline, func() { cancel(errJobTimeout) })
	return ctx, func() {
		after()
		cancel(context.Canceled)
	}
}

// jobTimedOut is the reason of what a job's timeout stopped.
func jobTimedOut(timeout timing.Duration) string {
	return fmt.Sprintf("job timed out after %s", timeout)
}

// expired reports whether the job's timeout has struck.
func (jr *jobRun) expired() bool {
	return jr.deadline != nil && passed(jr.deadline)
}

// passed reports whether a deadline context is done or its deadline has
// come: at the very moment it comes, the context may not be done yet.
func passed(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// attemptContext is a step attempt's context: done with base, with job
// (the job's deadline; nil when it does not bound the attempt) and after
// stepTimeout (0: none). why tells, once the attempt is over, what
// stopped it: "" for base (a cancellation), else the reason of the
// timeout that struck first and whether it was the job's.
func attemptContext(base, job context.Context, stepTimeout time.Duration, jobTimeout, stepTimeoutText string) (context.Context, context.CancelFunc, func() (string, bool)) {
	ctx, cancel := context.WithCancelCause(base)
	stop := func() bool { return true }
	if job != nil {
		stop = context.AfterFunc(job, func() { cancel(errJobTimeout) })
	}
	var timer *time.Timer
	if stepTimeout > 0 {
		timer = time.AfterFunc(stepTimeout, func() { cancel(errStepTimeout) })
	}
	release := func() {
		stop()
		if timer != nil {
			timer.Stop()
		}
		cancel(context.Canceled)
	}
	why := func() (string, bool) {
		switch {
		case ctx.Err() == nil || base.Err() != nil:
			return "", false
		case context.Cause(ctx) == errJobTimeout, job != nil && passed(job):
			// Also when the step's timeout struck at the same moment:
			// the job's time is up either way.
			return fmt.Sprintf("job timed out after %s", jobTimeout), true
		case context.Cause(ctx) == errStepTimeout:
			return fmt.Sprintf("timed out after %s", stepTimeoutText), false
		}
		return "", false
	}
	return ctx, release, why
}

// waitResult is how a wait between attempts ended.
type waitResult int

const (
	waitDone      waitResult = iota
	waitCancelled            // the run was cancelled (aborted, for cleanup steps)
	waitExpired              // the job's timeout struck
)

// sleep waits d between attempts. The job's deadline ends it: a wait
// that would end at or after the deadline waits for the deadline itself,
// so that no attempt starts after it. This holds for a cleanup step
// (always(), failure()) too, which waits only when its attempt ended
// before the deadline: one that runs after a job timeout has a single
// attempt, bounded by its own timeout.
func (jr *jobRun) sleep(step *compiler.Step, d time.Duration) waitResult {
	stop := jr.stepInterrupt(step)
	expired := jr.deadline.Done()
	if dl, ok := jr.deadline.Deadline(); ok && !time.Now().Add(d).Before(dl) {
		d = -1 // the deadline comes first: wait for it alone
	}
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	// A cancellation or an expiry already there wins over a timer that
	// fired at once.
	select {
	case <-stop.Done():
		return waitCancelled
	case <-expired:
		return waitExpired
	default:
	}
	select {
	case <-timer:
		return waitDone
	case <-stop.Done():
		return waitCancelled
	case <-expired:
		return waitExpired
	}
}

// shownDelay is the wait announced after a failed attempt: d, or the time
// left before the job's deadline when that is shorter.
func (jr *jobRun) shownDelay(d time.Duration) time.Duration {
	if dl, ok := jr.deadline.Deadline(); ok {
		if left := time.Until(dl); left < d {
			return max(left, 0).Round(time.Millisecond)
		}
	}
	return d
}

// noTimeForRetry words the failure of an attempt that had attempts left
// but ended after the job's deadline: the job timed out, as when the
// deadline strikes during the wait that follows.
func (jr *jobRun) noTimeForRetry(step *compiler.Step, sr *StepResult, retriesLeft bool) {
	if retriesLeft && sr.Status == event.StatusFailure && step.Condition.Status == compiler.StatusSuccess && jr.expired() && !jr.timedOut {
		jr.timedOut = true
		sr.Reason = jobTimedOut(jr.job.Timeout)
	}
}
