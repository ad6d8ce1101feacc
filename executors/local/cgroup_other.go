//go:build !linux

package local

import "os/exec"

// stepCgroup: cgroups are Linux's; elsewhere steps have the process group
// and the cookie only.
type stepCgroup struct{}

// cgroupBase is where steps' cgroups would be made.
type cgroupBase struct{}

func newStepCgroup(*cgroupBase, string) *stepCgroup { return nil }

func (g *stepCgroup) start(c *exec.Cmd) (*exec.Cmd, error) { return c, c.Start() }
func (g *stepCgroup) active() bool                         { return false }
func (g *stepCgroup) ended() bool                          { return false }
func (g *stepCgroup) kill()                                {}
func (g *stepCgroup) release(*cgroupBase)                  {}
func (g *stepCgroup) close()                               {}
func (b *cgroupBase) removeFree()                          {}
func (b *cgroupBase) prefixOf(string) string               { return "" }
