package ec2

import (
	"context"
	"testing"

	"github.com/nixflow/nixflow/executors"
)

// keepRecorder is a workspace that records how it was torn down.
type keepRecorder struct {
	executors.Workspace
	keep, called bool
}

func (k *keepRecorder) Teardown(_ context.Context, keep bool) error {
	k.keep, k.called = keep, true
	return nil
}

// TestTeardownKeepsNothing: a workspace on an instance is never kept
// (the instance goes, and the workspace with it): the SSH workspace
// under it is torn down whole, also when asked to keep it, so that no
// "kept workspace" is announced, nor left on a host that outlives the
// job (the tests' stand-in instances are this machine).
func TestTeardownKeepsNothing(t *testing.T) {
	inner := &keepRecorder{}
	w := &workspace{Workspace: inner, where: "shared"}
	if err := w.Teardown(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !inner.called || inner.keep {
		t.Errorf("the SSH workspace's Teardown: called %v, keep %v; want called, keep false", inner.called, inner.keep)
	}
}
