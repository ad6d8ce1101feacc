//go:build !linux

package local

import "os/exec"

// stepCgroup: cgroups are Linux's; elsewhere steps have the process group
// and the cookie only.
type stepCgroup struct{}

func newStepCgroup(string) *stepCgroup { return nil }

func (g *stepCgroup) start(c *exec.Cmd) (*exec.Cmd, error) { return c, c.Start() }
func (g *stepCgroup) kill()                                {}
func (g *stepCgroup) close()                               {}
