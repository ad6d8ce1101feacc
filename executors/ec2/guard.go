package ec2

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// An ec2 executor starts a guard (package watchdog) of kind "instances"
// before its first launch: if nixflow is killed with SIGKILL, or
// crashes, the guard terminates the instances it launched at once, where
// only their shutdown timers or `nixflow ec2 reap` would have. Its
// arguments are the region and the endpoint (empty: AWS's); it finds
// credentials as nixflow does, in the environment it inherits.
//
// The executor notes on the guard's pipe each RunInstances call under
// way (its client token), each instance launched (with the run directory
// that holds its record) and each instance it terminated. The guard
// terminates the launched instances not terminated, marks their records
// terminated and removes their keys; for a call under way when nixflow
// died, it looks the instance up by its token, as an interrupted launch
// does.
const instancesKind = "instances"

func init() {
	watchdog.Register(instancesKind, sweepInstances)
}

// The notes: a RunInstances call with token sent, and answered; an
// instance launched, recorded in runDir; an instance terminated.
func launchNote(token string) string   { return "launch " + token }
func answeredNote(token string) string { return "answered " + token }
func instanceNote(id, runDir string) string {
	return "instance " + id + " " + runDir
}
func terminatedNote(id string) string { return "terminated " + id }

// startGuard starts the executor's guard, once, before its first launch.
// A guard that cannot start is logged: the instances are still ended by
// their shutdown timers and by reap.
func (x *Executor) startGuard(c *Clients) {
	x.guardOnce.Do(func() {
		g, err := watchdog.Start(instancesKind, nil, c.Region, x.cfg.Endpoint, strconv.Itoa(os.Getpid()))
		if err != nil {
			x.log.Warn("no watchdog: the instances will not be terminated at once if nixflow is killed", "error", err)
		}
		x.guard = g
	})
}

// stopGuard stops the guard, once every instance is terminated.
func (x *Executor) stopGuard() {
	x.guardOnce.Do(func() {}) // no start from now on
	x.guard.Stop()
}

// guardState is what the notes say is left: the instances launched and
// not terminated (id to run directory, "" for none), and the tokens of
// the calls not answered.
type guardState struct {
	instances map[string]string
	tokens    []string
}

func readNotes(notes []string) guardState {
	s := guardState{instances: map[string]string{}}
	tokens := map[string]bool{}
	var order []string
	for _, n := range notes {
		kind, rest, _ := strings.Cut(n, " ")
		switch kind {
		case "launch":
			if !tokens[rest] {
				order = append(order, rest)
			}
			tokens[rest] = true
		case "answered":
			tokens[rest] = false
		case "instance":
			id, dir, _ := strings.Cut(rest, " ")
			s.instances[id] = dir
		case "terminated":
			delete(s.instances, rest)
		}
	}
	for _, t := range order {
		if tokens[t] {
			s.tokens = append(s.tokens, t)
		}
	}
	return s
}

// sweepInstances is the guard's sweeper.
func sweepInstances(args, notes []string) {
	if len(args) != 3 {
		return
	}
	s := readNotes(notes)
	if len(s.instances) == 0 && len(s.tokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	say := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "nixflow: watchdog: "+format+"\n", a...)
	}
	c, err := NewClients(ctx, args[0], args[1])
	if err != nil {
		say("terminate the EC2 instances of a killed nixflow: %v\nhint: run 'nixflow ec2 reap'", err)
		return
	}
	// What nixflow knew it launched first, then what calls under way
	// launched (which takes looking for a while).
	var done []string
	failed := map[string]bool{}
	terminate := func(ids []string) {
		if len(ids) == 0 {
			return
		}
		if _, err := c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err == nil {
			done = append(done, ids...)
			return
		}
		// Then one at a time: a call for several fails whole when one of
		// them is not known (yet: EC2 is eventually consistent),
		// terminating none.
		for _, id := range ids {
			if err := terminateLaunched(ctx, c, id); err != nil {
				say("terminate EC2 instance %s of a killed nixflow: %v\nhint: run 'nixflow ec2 reap'", id, err)
				failed[id] = true
				continue
			}
			done = append(done, id)
		}
	}
	var known []string
	for id := range s.instances {
		known = append(known, id)
	}
	sort.Strings(known)
	terminate(known)
	if len(s.tokens) > 0 {
		found, err := lookUpTokens(ctx, c, s.tokens)
		if err != nil {
			say("look up the instances of launches under way: %v\nhint: run 'nixflow ec2 reap'", err)
		}
		var more []string
		for _, id := range found {
			if _, ok := s.instances[id]; !ok {
				more = append(more, id)
			}
		}
		terminate(more)
	}
	if len(done) > 0 {
		say("terminated %s of nixflow process %s, which was killed: %s",
			executors.Count(len(done), "EC2 instance", "EC2 instances"), args[2], strings.Join(done, ", "))
	}
	dirs := map[string]bool{}
	for id, dir := range s.instances {
		if dir == "" || failed[id] {
			continue
		}
		if err := markTerminated(dir, id); err != nil {
			say("record the termination of %s: %v", id, err)
		}
		dirs[dir] = true
	}
	// The keys of the instances terminated are of no use; a run with
	// one that is not keeps them all, for reap.
	for id, dir := range s.instances {
		if failed[id] {
			delete(dirs, dir)
		}
	}
	for dir := range dirs {
		_ = RemoveKeys(dir)
	}
}

// terminateLaunched terminates instance id, which RunInstances launched:
// one that EC2 does not know is one it does not know yet (it is
// eventually consistent), tried again for a while (15 s).
func terminateLaunched(ctx context.Context, c *Clients, id string) error {
	var err error
	for _, wait := range tokenLookups {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		_, err = c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if apiCode(err) != "InvalidInstanceID.NotFound" {
			return err
		}
	}
	return err
}

// markTerminated rewrites the record of instance id in runDir as
// terminated now.
func markTerminated(runDir, id string) error {
	r, err := readRecord(filepath.Join(recordDir(runDir), id+".json"))
	if err != nil {
		return err
	}
	r.Terminated, r.Error = time.Now().UTC(), ""
	return writeRecord(runDir, r)
}

// lookUpTokens returns the instances that RunInstances calls with
// tokens launched. EC2 is eventually consistent: a launch it took may
// show a moment later, so it looks a few times (15 s in all) while a
// token has shown nothing; a token whose call AWS never took (nixflow
// died before it was sent) never shows.
func lookUpTokens(ctx context.Context, c *Clients, tokens []string) ([]string, error) {
	left := map[string]bool{}
	for _, t := range tokens {
		left[t] = true
	}
	var ids []string
	for _, wait := range tokenLookups {
		select {
		case <-ctx.Done():
			return ids, ctx.Err()
		case <-time.After(wait):
		}
		var values []string
		for t := range left {
			values = append(values, t)
		}
		p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: aws.String("client-token"), Values: values}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return ids, err
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					ids = append(ids, aws.ToString(i.InstanceId))
					delete(left, aws.ToString(i.ClientToken))
				}
			}
		}
		if len(left) == 0 {
			break
		}
	}
	return ids, nil
}
