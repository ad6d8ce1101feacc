package oci

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestGuardSweep: the watchdog of a killed nixflow's executor removes
// the containers of that executor (its token) and no other's, including
// one whose create was under way when nixflow died: it waits for the
// create's client, then looks again.
func TestGuardSweep(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			c, ref := needRuntime(t, rt)
			// The "killed nixflow": a live process, so that no other
			// test's sweep of dead owners' containers takes these.
			owner := exec.Command("sleep", "120")
			if err := owner.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
			runID := "test-guard-" + rt + strconv.Itoa(os.Getpid())
			t.Cleanup(func() {
				if ids := containersOf(t, c, runID); len(ids) > 0 {
					c.remove(context.Background(), ids...)
				}
			})
			token := "token-" + runID
			createArgs := func(name string, pid int, token string) []string {
				return []string{"create", "--name", name, "--label", LabelRun + "=" + runID, "--label", LabelGuard + "=" + token,
					"--label", LabelOwnerPID + "=" + strconv.Itoa(pid), "--label", LabelHost + "=" + hostname(), ref, "true"}
			}
			mk := func(name string, pid int, token string) {
				if _, err := c.output(context.Background(), nil, createArgs(name, pid, token)...); err != nil {
					t.Fatal(err)
				}
			}
			mk("nixflow-guard-made-"+runID, owner.Process.Pid, token)
			// Another executor's, of the same nixflow (another guard's
			// token), and another nixflow's (this test process, alive):
			// not the guard's to remove.
			sibling := "nixflow-guard-sibling-" + runID
			mk(sibling, owner.Process.Pid, "another-"+token)
			other := "nixflow-guard-other-" + runID
			mk(other, os.Getpid(), "other-"+token)
			// A create whose client is still at work when the guard
			// starts: it makes its container a second later.
			late := "nixflow-guard-late-" + runID
			client := exec.Command("sh", "-c", `sleep 1; exec "$0" "$@"`)
			client.Args = append(client.Args, append([]string{c.path}, createArgs(late, owner.Process.Pid, token)...)...)
			if err := client.Start(); err != nil {
				t.Fatal(err)
			}
			notes := []string{
				createNote("nixflow-guard-made-"+runID, 1), createdNote("nixflow-guard-made-" + runID),
				createNote(late, client.Process.Pid),
			}
			sweepOwned([]string{c.name, c.path, token, strconv.Itoa(owner.Process.Pid)}, notes)
			if err := client.Wait(); err != nil {
				t.Fatalf("the late create: %v", err)
			}
			out, err := c.output(context.Background(), nil, "ps", "--all", "--format", "{{.Names}}", "--filter", "label="+LabelRun+"="+runID)
			if err != nil {
				t.Fatal(err)
			}
			names := strings.Fields(out)
			slices.Sort(names)
			if want := []string{other, sibling}; !slices.Equal(names, want) {
				t.Errorf("containers after the guard's sweep: %q, want only %q (another executor's, another nixflow's)", names, want)
			}
		})
	}
}

func TestPendingCreates(t *testing.T) {
	notes := []string{createNote("a", 10), createNote("b", 11), createdNote("a"), "garbage", createNote("c", 12), createdNote("x")}
	got := pendingCreates(notes)
	slices.Sort(got)
	if !slices.Equal(got, []int{11, 12}) {
		t.Errorf("pendingCreates = %v, want [11 12]", got)
	}
}
