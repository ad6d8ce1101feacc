package executors

import (
	"context"
	"fmt"
	"sync"
)

// Guard counts the operations in progress on a workspace (Run, CopyIn,
// CopyOut), so that Teardown can wait for them, and refuses new ones once
// Teardown has begun. The zero value is ready to use; it is safe for
// concurrent use.
type Guard struct {
	mu     sync.Mutex
	closed bool
	active sync.WaitGroup
}

// Begin registers an operation on the workspace called name; it fails
// once Close was called. The caller calls Done when the operation ends.
func (g *Guard) Begin(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("workspace %s was torn down", name)
	}
	g.active.Add(1)
	return nil
}

// Done ends an operation Begin registered.
func (g *Guard) Done() { g.active.Done() }

// Close refuses new operations from now on. It reports false when it had
// been called before (Teardown then has nothing more to do).
func (g *Guard) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	first := !g.closed
	g.closed = true
	return first
}

// Closed reports whether Close was called.
func (g *Guard) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Wait waits for the operations in progress to end, as long as ctx allows:
// a backend bounds how long a stopped operation takes to return, so
// Teardown may go ahead when ctx ends. It reports whether they ended.
func (g *Guard) Wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		g.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
