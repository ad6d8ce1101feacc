package oci

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sweep removes, on every runtime that answers (docker, podman), the
// containers nixflow made on this host whose owning nixflow process is
// gone, and returns how many it removed. `nixflow gc` calls it; each run
// does the same on its runtime at its first Prepare.
func Sweep(ctx context.Context, environ []string) (int, error) {
	return sweepAll(ctx, environ, false)
}

// Orphaned counts what Sweep would remove, removing nothing.
func Orphaned(ctx context.Context, environ []string) (int, error) {
	return sweepAll(ctx, environ, true)
}

func sweepAll(ctx context.Context, environ []string, dryRun bool) (int, error) {
	total := 0
	var errs []error
	for _, name := range []string{"docker", "podman"} {
		c, err := probe(ctx, name, environ)
		if err != nil {
			continue // not installed or not answering: nothing of ours there
		}
		var n int
		if dryRun {
			var dead []string
			dead, err = c.orphans(ctx, nil)
			n = len(dead)
		} else {
			n, err = c.sweep(ctx, nil)
		}
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// ClosureImageAge is how long a closure image stays unused before `nixflow
// gc` removes it: long enough that a run which just found it has started
// its container from it.
const ClosureImageAge = time.Hour

// PruneClosureImages removes, on every runtime that answers, the images
// nixflow assembled from deps' closures (labelled LabelClosure) that no
// container uses and that were made longer than olderThan ago, and
// returns how many it removed. They are a cache: a job that needs one
// again assembles it again.
func PruneClosureImages(ctx context.Context, environ []string, olderThan time.Duration) (int, error) {
	total := 0
	var errs []error
	for _, name := range []string{"docker", "podman"} {
		c, err := probe(ctx, name, environ)
		if err != nil {
			continue
		}
		n, err := c.pruneClosures(ctx, olderThan, "")
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// pruneClosures is PruneClosureImages on one runtime, for the images whose
// LabelClosure is value (any, if empty). (The runtimes' own `image prune
// --filter until=` misses images of the last second on docker.)
func (c *cli) pruneClosures(ctx context.Context, olderThan time.Duration, value string) (int, error) {
	label := LabelClosure
	if value != "" {
		label += "=" + value
	}
	out, err := c.output(ctx, nil, "image", "ls", "--quiet", "--no-trunc", "--filter", "label="+label)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range slices.Compact(strings.Fields(out)) {
		created, err := c.output(ctx, nil, "image", "inspect", "--format", "{{.Created}}", id)
		if err != nil {
			if !notFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if t, ok := parseCreated(strings.TrimSpace(created)); !ok || time.Since(t) < olderThan {
			continue
		}
		users, err := c.output(ctx, nil, "ps", "--all", "--quiet", "--filter", "ancestor="+id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.TrimSpace(users) != "" {
			continue
		}
		// Without --force: an image a container took meanwhile stays.
		if _, err := c.output(ctx, nil, "image", "rm", id); err != nil {
			if !notFound(err) && !inUse(err) {
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// parseCreated reads an image's creation time as docker (RFC 3339) or
// podman (Go's time.String) prints it.
func parseCreated(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999 -0700 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// inUse reports whether err is a runtime's refusal to remove an image a
// container uses.
func inUse(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "being used") || strings.Contains(msg, "in use") || strings.Contains(msg, "is using")
}

// containers lists the ids of the containers, running or not, that match
// every filter (ps --filter: "label=K=V", "ancestor=IMAGE").
func (c *cli) containers(ctx context.Context, filters ...string) ([]string, error) {
	args := []string{"ps", "--all", "--quiet", "--no-trunc"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	out, err := c.output(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// sweep removes the containers labelled by nixflow on this host whose
// owner is dead, among those matching the extra label filters.
func (c *cli) sweep(ctx context.Context, filters []string) (int, error) {
	dead, err := c.orphans(ctx, filters)
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	if err := c.remove(ctx, dead...); err != nil {
		return 0, err
	}
	return len(dead), nil
}

// orphans lists the containers sweep removes: nixflow's, on this host,
// whose owning nixflow process is gone (with filters, more labels).
func (c *cli) orphans(ctx context.Context, filters []string) ([]string, error) {
	var ids []string
	// Containers labelled with the host name alone come from a nixflow
	// that did not record its PID namespace (before 2026-12): their owner
	// is looked for here, as then.
	h, _ := os.Hostname()
	for _, host := range slices.Compact([]string{hostname(), h}) {
		fs := []string{"label=" + LabelOwnerPID, "label=" + LabelHost + "=" + host}
		for _, f := range filters {
			fs = append(fs, "label="+f)
		}
		found, err := c.containers(ctx, fs...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	var dead []string
	for _, id := range ids {
		// One at a time: a container may go while we look.
		js, err := c.output(ctx, nil, "container", "inspect", "--format", "{{json .Config.Labels}}", id)
		if err != nil {
			if notFound(err) {
				continue
			}
			return nil, err
		}
		var l map[string]string
		if json.Unmarshal([]byte(js), &l) != nil {
			continue
		}
		pid, err := strconv.Atoi(l[LabelOwnerPID])
		if err != nil || !ownerAlive(pid, l[LabelOwnerStart]) {
			dead = append(dead, id)
		}
	}
	return dead, nil
}

// ownerAlive reports whether the process pid that started at start (as
// processStart gives it; empty where unknown) is still running.
func ownerAlive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if start == "" {
		return true
	}
	s := processStart(pid)
	return s == "" || s == start
}

// processStart returns when process pid started, in clock ticks since
// boot (from /proc), so that a reused pid is not taken for the owner;
// empty where /proc does not tell.
func processStart(pid int) string {
	if f := procStat(pid); len(f) >= 20 {
		return f[19] // starttime, field 22
	}
	return ""
}

// processState returns the state of process pid ('R', 'S', 'Z'...), 0
// where /proc does not tell.
func processState(pid int) byte {
	if f := procStat(pid); len(f) > 0 && f[0] != "" {
		return f[0][0] // state, field 3
	}
	return 0
}

// procStat returns the fields of /proc/PID/stat after the command name
// (the state, field 3, first), nil where /proc does not tell.
func procStat(pid int) []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
