package executors

import "context"

// WaitOrStop waits for exited to be closed (the step's process is gone).
// When ctx is done first, it calls stop with the escalation cmd.Stop gives
// (the zero Signals when cmd.Stop is nil) and reports that the step was
// stopped; a step that ended on its own meanwhile was not. Backends that
// run a step as a process of this machine (local, the ssh client) share
// it.
func WaitOrStop(ctx context.Context, exited <-chan struct{}, cmd Command, stop func(Signals)) (stopped bool) {
	select {
	case <-exited:
		return false
	case <-ctx.Done():
	}
	select {
	case <-exited:
		return false
	default:
	}
	sig := Signals{}
	if cmd.Stop != nil {
		sig = cmd.Stop()
	}
	stop(sig)
	return true
}
