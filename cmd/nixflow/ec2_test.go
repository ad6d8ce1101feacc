package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/executors/ec2/ec2test"
	"github.com/nixflow/nixflow/internal/testenv"
)

// ec2Secret is the scripts' fake AWS secret key: no user data, tag, log or
// output may show it.
const ec2Secret = "nixflow-script-secret-7b21e4"

// ec2World is the moto server and boot harness of the scripts that run
// jobs on EC2, started by the first script that needs it (ec2env) and
// stopped when every script is done.
type ec2World struct {
	once    sync.Once
	err     error
	moto    *ec2test.Moto
	clients *ec2.Clients
	subnet  string
	booter  *ec2test.Booter
}

func newEC2World(t *testing.T) *ec2World {
	w := &ec2World{}
	t.Cleanup(func() {
		if w.booter != nil {
			w.booter.Close()
		}
		if w.moto != nil {
			w.moto.Close()
		}
	})
	return w
}

func (w *ec2World) start() error {
	w.once.Do(func() {
		if w.moto, w.err = ec2test.StartMoto(); w.err != nil {
			return
		}
		ctx := context.Background()
		w.clients = w.moto.Clients()
		if w.subnet, _, w.err = ec2test.Network(ctx, w.clients); w.err != nil {
			return
		}
		w.booter, w.err = ec2test.StartBooter(w.clients, w.subnet, 22)
	})
	return w.err
}

// available is the [moto] condition: moto and sshd are installed (they
// must be, when NIXFLOW_TEST_REQUIRE lists moto).
func (w *ec2World) available() (bool, error) {
	ok, why := ec2test.MotoAvailable()
	if ok {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			ok, why = false, "sshd not installed"
		}
	}
	if !ok && testenv.Required("moto") {
		return false, fmt.Errorf("moto is required (NIXFLOW_TEST_REQUIRE) but not available: %s", why)
	}
	return ok, nil
}

func (w *ec2World) cmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"ec2env":  w.cmdEnv,
		"ec2hold": w.cmdHold,
		"ec2live": w.cmdLive,
		"ec2scan": w.cmdScan,
		"ec2kill": w.cmdKill,
	}
}

// cmdEnv starts moto and the boot harness if needed and points the
// script's nixflow at them: AWS_* and EC2_SUBNET (a loopback subnet whose
// instances the harness "boots").
func (w *ec2World) cmdEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: ec2env")
	}
	ts.Check(w.start())
	for _, kv := range w.moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		ts.Setenv(k, v)
	}
	ts.Setenv("AWS_SECRET_ACCESS_KEY", ec2Secret)
	ts.Setenv("EC2_SUBNET", w.subnet)
}

// cmdHold makes the instances of a job never answer SSH, as if booting
// forever.
func (w *ec2World) cmdHold(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: ec2hold JOB")
	}
	w.booter.Hold(args[0], !neg)
}

// cmdKill makes the running instances tagged script=TAG die as machines
// do (their sshd and sessions killed; EC2 still has them running).
func (w *ec2World) cmdKill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ec2kill TAG")
	}
	all, err := w.instances(args[0])
	ts.Check(err)
	killed := 0
	for _, i := range all {
		if i.State.Name == types.InstanceStateNameRunning && w.booter.Kill(aws.ToString(i.InstanceId)) {
			killed++
		}
	}
	if killed == 0 {
		ts.Fatalf("no booted instance tagged script=%s to kill", args[0])
	}
}

// instances returns the instances tagged script=tag, with their state.
func (w *ec2World) instances(tag string) ([]types.Instance, error) {
	out, err := w.clients.EC2.DescribeInstances(context.Background(), &awsec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:script"), Values: []string{tag}}},
	})
	if err != nil {
		return nil, err
	}
	var all []types.Instance
	for _, r := range out.Reservations {
		all = append(all, r.Instances...)
	}
	return all, nil
}

// cmdLive waits (at most 30 s) until exactly N instances tagged script=TAG
// are not terminated (pending, running, stopping or stopped).
func (w *ec2World) cmdLive(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ec2live TAG N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	var live []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		all, err := w.instances(args[0])
		ts.Check(err)
		live = live[:0]
		for _, i := range all {
			switch i.State.Name {
			case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown:
			default:
				live = append(live, aws.ToString(i.InstanceId)+" "+string(i.State.Name))
			}
		}
		if len(live) == want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%d instances tagged script=%s are not terminated, want %d: %v", len(live), args[0], want, live)
		}
	}
}

// cmdScan checks that the AWS secret is in no user data, tag or disk of the
// instances tagged script=TAG, and that there was at least one.
func (w *ec2World) cmdScan(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ec2scan TAG")
	}
	all, err := w.instances(args[0])
	ts.Check(err)
	if len(all) == 0 {
		ts.Fatalf("no instance tagged script=%s", args[0])
	}
	ud := w.booter.UserData()
	for _, i := range all {
		id := aws.ToString(i.InstanceId)
		if strings.Contains(fmt.Sprint(i.Tags), ec2Secret) || strings.Contains(ud[id], ec2Secret) {
			ts.Fatalf("the AWS secret is in the tags or user data of %s", id)
		}
		for _, env := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"} {
			if strings.Contains(ud[id], env) {
				ts.Fatalf("the user data of %s names %s", id, env)
			}
		}
	}
	// The instances' disks.
	ts.Check(filepath.WalkDir(w.booter.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // gone meanwhile, or not a file
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(ec2Secret)) {
			return fmt.Errorf("the AWS secret is on an instance's disk: %s", p)
		}
		return nil
	}))
}
