package ssh

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nixflow/nixflow/executors"
)

const (
	// killTimeout bounds the wait for a step's session to end after
	// SIGKILL was sent: it ends unless the connection hangs or a process
	// beyond reach holds the step's output open.
	killTimeout = 5 * time.Second
	// clientGrace bounds the wait for the ssh client once its standard
	// input is closed, the last resort.
	clientGrace = 2 * time.Second
)

// run runs the step through step.sh and stops it on ctx's end with the
// escalation of cmd.Stop, sent as control lines. It releases the channel
// its caller took for it.
func (w *workspace) run(ctx context.Context, cmd executors.Command, dir string) (executors.Result, error) {
	var once sync.Once
	release := func() { once.Do(w.c.release) }
	defer release()
	cookie := rand.Text()
	state := w.statePrefix() + "@" + cookie
	hdr := header(state, dir, cookie, cmd.Env, cmd.PathPrepend, cmd.Argv)

	// Not killed with ctx: a stop goes through the escalation.
	c, done := w.c.command(context.WithoutCancel(ctx), "exec bash --noprofile --norc "+shellQuote(path.Join(w.c.run, "ctl", "step.sh")))
	defer done()
	stdin, err := c.StdinPipe()
	if err != nil {
		return executors.Result{}, fmt.Errorf("run: %w", err)
	}
	tail := &tailBuffer{max: 2048}
	stdout, stderr := newOutput(cmd.Stdout), newOutput(cmd.Stderr)
	c.Stdout = stdout
	c.Stderr = io.MultiWriter(stderr, tail)
	// Once the client exits, its output is complete: bound the wait for
	// the copiers only in case a writer blocks.
	c.WaitDelay = clientGrace
	if err := c.Start(); err != nil {
		return executors.Result{}, fmt.Errorf("run: start ssh: %w", err)
	}
	ctlc := &control{w: stdin}
	go ctlc.send(string(hdr))

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = c.Wait()
		close(exited)
	}()

	var forced bool // set by stop before exited is closed
	stopped := executors.WaitOrStop(ctx, exited, cmd, func(sig executors.Signals) { forced = w.stop(ctlc, exited, sig, c) })
	<-exited
	ctlc.close()
	release()
	if forced {
		// The step's session did not end when told to: if the host does
		// not answer either, the connection hangs (a network partition).
		// Ending it now makes what follows (the control files, the
		// teardown) fail at once rather than wait for ssh to notice.
		if err := w.c.ping(); err != nil && !errors.Is(err, errBusy) {
			w.c.abandon()
			return executors.Result{ExitCode: -1, Stopped: stopped}, w.c.lostError()
		}
	}

	res := executors.Result{Stopped: stopped}
	code, ok := exitStatus(waitErr)
	switch {
	case !ok && errors.Is(waitErr, exec.ErrWaitDelay):
		code, ok = c.ProcessState.ExitCode(), true
	case !ok:
		return executors.Result{}, fmt.Errorf("run on %s: %w", w.Where(), waitErr)
	case code < 0 && !stopped:
		// The client was killed (by a signal, not by this Run): the step's
		// end is not known, and the runner stops it as its standard input
		// ended.
		return executors.Result{}, fmt.Errorf("run on %s: the ssh client was killed (%v)", w.Where(), waitErr)
	}
	res.ExitCode = code
	if code == 255 {
		// The step's own 255, or ssh's: step.sh leaves a mark for the
		// former.
		// Else the runner's complaint, if it made one: not the step's.
		var why strings.Builder
		if err := w.c.script(context.Background(), whyScript, []string{state}, nil, &why); err != nil {
			var se *scriptError
			if !errors.As(err, &se) {
				return res, fmt.Errorf("run on %s: %w", w.Where(), err)
			}
			msg := strings.TrimSpace(why.String())
			if msg == "" {
				msg = strings.TrimSpace(tail.String())
			}
			if msg == "" {
				msg = "ssh failed"
			}
			if c := w.c; isLost(c) {
				return res, c.lostError()
			}
			if stopped {
				return res, nil
			}
			line := lastLine(msg)
			if rest, ok := strings.CutPrefix(line, noWorkdir); ok {
				return executors.Result{}, fmt.Errorf("run on %s: %w%s", w.Where(), executors.ErrNoWorkdir, rest)
			}
			return res, fmt.Errorf("run on %s: %s", w.Where(), line)
		}
	}
	if stopped && code == -1 {
		res.ExitCode = 128 + 9
	}
	if err := stdout.err; err != nil {
		return res, fmt.Errorf("write standard output: %w", err)
	}
	if err := stderr.err; err != nil {
		return res, fmt.Errorf("write standard error: %w", err)
	}
	return res, nil
}

// whyScript tells, after an exit status 255, the step's own (the mark
// $1.255 that step.sh left, or, where it could not make one (a full
// disk), the status x255 it wrote over the process group id; exit 0) from
// the runner's or ssh's (exit 1, printing the runner's complaint, if any).
const whyScript = `if rm -- "$1.255" 2>/dev/null; then exit 0; fi
m=
IFS= read -r m 2>/dev/null <"$1.pgid"
if [ "$m" = x255 ] && ! [ -e "$1.why" ]; then exit 0; fi
cat -- "$1.why" 2>/dev/null
rm -f -- "$1.why"
exit 1`

// noWorkdir starts step.sh's message for a working directory that is not
// there.
const noWorkdir = "nixflow: no such working directory"

// isLost reports whether the master connection is gone.
func isLost(c *conn) bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// stop sends the escalation as control lines, waiting the graces for the
// step's session to end; in the last resort it closes the channel's
// standard input (step.sh stops the step on its own) and kills the
// client, and reports that it had to.
func (w *workspace) stop(ctl *control, exited <-chan struct{}, sig executors.Signals, c *exec.Cmd) (forced bool) {
	// wait waits up to d for the step to end; a closed hurry (a second
	// Ctrl-C) ends the wait as its deadline does.
	wait := func(d time.Duration, hurry <-chan struct{}) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-exited:
			return true
		case <-t.C:
			return false
		case <-hurry:
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}
	}
	if sig.FirstSignalInterrupt {
		ctl.send("INT\n")
		if wait(sig.InterruptGrace, sig.Hurry) {
			return false
		}
	}
	ctl.send("TERM\n")
	if wait(sig.TerminateGrace, sig.Hurry) {
		return false
	}
	ctl.send("KILL\n")
	if wait(killTimeout, nil) {
		return false
	}
	ctl.close()
	if !wait(clientGrace, nil) {
		_ = c.Process.Kill()
	}
	return true
}

// control writes to a step's channel, one write at a time.
type control struct {
	mu     sync.Mutex
	w      io.WriteCloser
	closed bool
}

func (c *control) send(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		_, _ = io.WriteString(c.w, s)
	}
}

func (c *control) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		_ = c.w.Close()
	}
}

// output passes a stream on and remembers the first write error, after
// which it discards (the step must not block on a full pipe).
type output struct {
	dst io.Writer
	err error
}

func newOutput(dst io.Writer) *output {
	if dst == nil {
		dst = io.Discard
	}
	return &output{dst: dst}
}

func (o *output) Write(p []byte) (int, error) {
	if o.err == nil {
		_, o.err = o.dst.Write(p)
	}
	return len(p), nil
}
