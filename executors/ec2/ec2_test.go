package ec2_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/executors/ec2/ec2test"
	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/internal/testenv"
	"github.com/nixflow/nixflow/timing"
)

// secretKey is the fake AWS secret of the tests: it must appear in no
// user data, tag, record or log.
const secretKey = "nixflow-test-secret-3f9a1c"

// world is the moto server and the booter, shared by the package's tests.
type world struct {
	moto    *ec2test.Moto
	clients *ec2.Clients
	subnet  string
	prefix  string
	booter  *ec2test.Booter
	err     error
}

var (
	shared     world
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.booter != nil {
		shared.booter.Close()
	}
	if shared.moto != nil {
		shared.moto.Close()
	}
	os.Exit(code)
}

// setup starts moto and the booter once for the package's tests.
func setup(t *testing.T) *world {
	t.Helper()
	ok, why := ec2test.MotoAvailable()
	testenv.Need(t, "moto", ok, why)
	testenv.NeedCommand(t, "sshd", "ssh")
	sharedOnce.Do(func() {
		shared.moto, shared.err = ec2test.StartMoto()
		if shared.err != nil {
			return
		}
		// For the clients the executors make themselves.
		for _, kv := range shared.moto.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		os.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
		ctx := context.Background()
		shared.clients = shared.moto.Clients()
		if shared.subnet, shared.prefix, shared.err = ec2test.Network(ctx, shared.clients); shared.err != nil {
			return
		}
		shared.booter, shared.err = ec2test.StartBooter(shared.clients, shared.subnet, 22)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return &shared
}

func (w *world) config() *compiler.EC2Executor {
	return &compiler.EC2Executor{
		Region: ec2test.Region, AMI: "ami-12345678", InstanceType: "t3.micro",
		SubnetID: w.subnet, SSHUser: "root", SSHPort: 22, Address: "auto",
		MaxLifetime: timing.Duration(30 * time.Minute), Mode: "isolated",
		Tags: map[string]string{"team": "ci"},
	}
}

func (w *world) executor(t *testing.T, cfg *compiler.EC2Executor, o ec2.Options) *ec2.Executor {
	t.Helper()
	if o.Clients == nil {
		o.Clients = w.clients
	}
	if o.SSHTimeout == 0 {
		o.SSHTimeout = 30 * time.Second
	}
	o.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	x, err := ec2.NewWithOptions(executors.Params{Config: cfg, RunID: "run-" + strings.ToLower(t.Name()), RunDir: t.TempDir()}, o)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func describe(t *testing.T, w *world, id string) types.Instance {
	t.Helper()
	out, err := w.clients.EC2.DescribeInstances(context.Background(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func gone(t *testing.T, w *world, id string) {
	t.Helper()
	st := describe(t, w, id).State.Name
	if st != types.InstanceStateNameTerminated && st != types.InstanceStateNameShuttingDown {
		t.Errorf("instance %s is %s, want terminated", id, st)
	}
}

// records reads the run's instance records.
func records(t *testing.T, runDir string) []ec2.Record {
	t.Helper()
	recs, err := ec2.Records(runDir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestConformance runs the executor suite on instances launched in moto
// and "booted" by the harness: every job on an instance of its own, over
// the SSH executor. Not parallel: the suite sets environment variables.
func TestConformance(t *testing.T) {
	w := setup(t)
	executortest.Run(t, executortest.Backend{
		New: func(t *testing.T) executors.Executor {
			x := w.executor(t, w.config(), ec2.Options{})
			t.Cleanup(func() {
				ids, err := ec2test.LiveInstances(context.Background(), w.clients)
				if err != nil {
					t.Error(err)
				}
				for _, id := range ids {
					if strings.Contains(tagMap(describe(t, w, id).Tags)[ec2.TagRunID], "conformance") {
						t.Errorf("instance %s of the suite left running", id)
					}
				}
			})
			return x
		},
	})
}

func TestLaunchRunTerminate(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{})
	runDir := t.TempDir()
	var logs []string
	var mu sync.Mutex
	spec := executors.JobSpec{RunID: "run-launch", Job: "build", RunDir: runDir, Log: func(m string) {
		mu.Lock()
		logs = append(logs, m)
		mu.Unlock()
	}}
	ws, err := x.Prepare(context.Background(), spec)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	recs := records(t, runDir)
	if len(recs) != 1 || !recs[0].Terminated.IsZero() {
		t.Fatalf("records after launch: %+v", recs)
	}
	id := recs[0].InstanceID
	if !strings.HasPrefix(ws.Where(), "ec2 "+id+" (root@"+w.prefix) {
		t.Errorf("Where = %q", ws.Where())
	}
	inst := describe(t, w, id)
	tags := tagMap(inst.Tags)
	for k, want := range map[string]string{ec2.TagRunID: "run-launch", ec2.TagJob: "build", "team": "ci"} {
		if tags[k] != want {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, tags[k], want, tags)
		}
	}
	if _, err := time.Parse(time.RFC3339, tags[ec2.TagExpiresAt]); err != nil {
		t.Errorf("expires-at tag: %v", err)
	}
	attr, err := w.clients.EC2.DescribeInstanceAttribute(context.Background(), &awsec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior,
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(attr.InstanceInitiatedShutdownBehavior.Value); v != "terminate" {
		t.Errorf("shutdown behaviour = %q, want terminate", v)
	}
	ud := w.booter.UserData()[id]
	if !strings.Contains(ud, "ssh-ed25519 ") || !strings.Contains(ud, `shutdown, -h, "+30"`) {
		t.Errorf("user data lacks the key or the shutdown timer:\n%s", ud)
	}
	if !slices.Contains(w.booter.Booted(), id) {
		t.Errorf("the booter did not boot %s", id)
	}
	var out strings.Builder
	res, err := ws.Run(context.Background(), executors.Command{Argv: []string{"bash", "-c", "echo hi from $(whoami)"}, Stdout: &out, Stderr: io.Discard})
	if err != nil || res.ExitCode != 0 || out.String() != "hi from root\n" {
		t.Fatalf("Run: %v %+v %q", err, res, out.String())
	}
	if err := ws.Teardown(context.Background(), false); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	gone(t, w, id)
	recs = records(t, runDir)
	if len(recs) != 1 || recs[0].Terminated.IsZero() {
		t.Errorf("records after teardown: %+v", recs)
	}
	want := []string{"launching t3.micro instance from ami-12345678", "launched " + id, "waiting for ssh on " + aws.ToString(inst.PrivateIpAddress), "terminated " + id}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range want {
		if !slices.Contains(logs, l) {
			t.Errorf("no progress line %q in %q", l, logs)
		}
	}
	scan(t, strings.Join(logs, "\n"), ud, fmt.Sprint(inst.Tags))
}

// TestInstanceLost checks that a step whose instance dies under it fails
// with executors.ErrWorkspaceLost (so that the engine can start the job
// again on a new instance when the step has retry), that the workspace
// fails at once from then on, and that Teardown still terminates the
// instance.
func TestInstanceLost(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{})
	runDir := t.TempDir()
	ws, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-lost-instance", Job: "dies", RunDir: runDir})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	id := records(t, runDir)[0].InstanceID
	var out executortest.Output
	type ran struct {
		res executors.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := ws.Run(context.Background(), executors.Command{
			Argv:   []string{"bash", "-c", "echo started; sleep 60"},
			Stdout: &out, Stderr: &out,
		})
		done <- ran{res, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "started"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the step did not start: %q", out.String())
		}
	}
	if !w.booter.Kill(id) {
		t.Fatalf("instance %s was not booted", id)
	}
	var r ran
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after its instance died")
	}
	if !errors.Is(r.err, executors.ErrWorkspaceLost) {
		t.Fatalf("Run = %+v, %v; want an error that is executors.ErrWorkspaceLost", r.res, r.err)
	}
	if _, err := ws.Run(context.Background(), executors.Command{Argv: []string{"true"}}); !errors.Is(err, executors.ErrWorkspaceLost) {
		t.Errorf("Run after the loss = %v, want executors.ErrWorkspaceLost", err)
	}
	_ = ws.Teardown(context.Background(), false) // the ssh side fails: the host is gone
	gone(t, w, id)
	if recs := records(t, runDir); recs[0].Terminated.IsZero() {
		t.Errorf("the record does not say terminated: %+v", recs)
	}
}

// scan fails when the AWS secret appears in any of texts.
func scan(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secretKey) {
			t.Errorf("the AWS secret leaked into %q", s)
		}
	}
}

func TestCancelDuringBootTerminates(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{})
	w.booter.Hold("boot", true)
	runDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := executors.JobSpec{RunID: "run-cancel", Job: "boot", RunDir: runDir, Log: func(m string) {
		if strings.HasPrefix(m, "waiting for ssh") {
			cancel()
		}
	}}
	_, err := x.Prepare(ctx, spec)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare = %v, want context.Canceled", err)
	}
	recs := records(t, runDir)
	if len(recs) != 1 || recs[0].Terminated.IsZero() {
		t.Fatalf("records: %+v", recs)
	}
	gone(t, w, recs[0].InstanceID)
}

func TestConnectFailureTerminates(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{Connect: func(ssh.Target, executors.Params) (executors.Executor, error) {
		return nil, errors.New("no ssh today")
	}})
	runDir := t.TempDir()
	_, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-connect", Job: "j", RunDir: runDir})
	if err == nil || !strings.Contains(err.Error(), "no ssh today") {
		t.Fatalf("Prepare = %v", err)
	}
	recs := records(t, runDir)
	if len(recs) != 1 {
		t.Fatalf("records: %+v", recs)
	}
	gone(t, w, recs[0].InstanceID)
}

// TestLaunchOptions checks that spot, keyName, securityGroupIds and
// rootVolumeSize reach the RunInstances request, and that address =
// "public" on a subnet without public addresses fails with a hint and
// terminates the instance.
func TestLaunchOptions(t *testing.T) {
	w := setup(t)
	t.Parallel()
	ctx := context.Background()
	sn, err := w.clients.EC2.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{SubnetIds: []string{w.subnet}})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := w.clients.EC2.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{
		GroupName: aws.String("nixflow-test-options"), Description: aws.String("test"), VpcId: sn.Subnets[0].VpcId,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.clients.EC2.CreateKeyPair(ctx, &awsec2.CreateKeyPairInput{KeyName: aws.String("nixflow-test-key")}); err != nil {
		t.Fatal(err)
	}
	img, err := w.clients.EC2.RegisterImage(ctx, &awsec2.RegisterImageInput{
		Name: aws.String("nixflow-test-options"), RootDeviceName: aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(8)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	di, err := w.clients.EC2.DescribeImages(ctx, &awsec2.DescribeImagesInput{ImageIds: []string{aws.ToString(img.ImageId)}})
	if err != nil || len(di.Images) != 1 {
		t.Fatalf("DescribeImages: %v", err)
	}
	rootDevice := aws.ToString(di.Images[0].RootDeviceName) // the image's own, whatever it is
	cfg := w.config()
	cfg.AMI = aws.ToString(img.ImageId)
	cfg.Spot, cfg.KeyName, cfg.RootVolumeSize = true, "nixflow-test-key", 50
	cfg.SecurityGroupIDs = []string{aws.ToString(sg.GroupId)}
	cfg.Address = "private"
	c, _, bodies := proxied(t, w)
	x := w.executor(t, cfg, ec2.Options{Clients: c})
	runDir := t.TempDir()
	ws, err := x.Prepare(ctx, executors.JobSpec{RunID: "run-options", Job: "opts", RunDir: runDir})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	id := records(t, runDir)[0].InstanceID
	if want := "ec2 " + id + " (root@" + aws.ToString(describe(t, w, id).PrivateIpAddress) + ")"; ws.Where() != want {
		t.Errorf("Where = %q, want %q (the private address)", ws.Where(), want)
	}
	if err := ws.Teardown(ctx, false); err != nil {
		t.Fatal(err)
	}
	var run string
	for _, b := range bodies() {
		if strings.Contains(b, "Action=RunInstances") {
			run = b
		}
	}
	q, err := url.ParseQuery(run)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"InstanceMarketOptions.MarketType":                               "spot",
		"InstanceMarketOptions.SpotOptions.SpotInstanceType":             "one-time",
		"InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior": "terminate",
		"KeyName":                                      "nixflow-test-key",
		"SecurityGroupId.1":                            aws.ToString(sg.GroupId),
		"BlockDeviceMapping.1.DeviceName":              rootDevice,
		"BlockDeviceMapping.1.Ebs.VolumeSize":          "50",
		"BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
		"InstanceInitiatedShutdownBehavior":            "terminate",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("RunInstances %s = %q, want %q", k, got, want)
		}
	}

	// No public address on this subnet.
	cfg = w.config()
	cfg.Address = "public"
	x = w.executor(t, cfg, ec2.Options{})
	runDir = t.TempDir()
	_, err = x.Prepare(ctx, executors.JobSpec{RunID: "run-public", Job: "public", RunDir: runDir})
	if err == nil || !strings.Contains(err.Error(), "has no public address") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("Prepare with address = public: %v", err)
	}
	gone(t, w, records(t, runDir)[0].InstanceID)
}

// TestLaunchAnswerLost checks that an instance whose RunInstances answer
// never came (the call cancelled while AWS launched it) is found by its
// client token and terminated.
func TestLaunchAnswerLost(t *testing.T) {
	w := setup(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target, _ := url.Parse(w.moto.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	launched := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if !strings.Contains(string(body), "Action=RunInstances") {
			proxy.ServeHTTP(rw, r)
			return
		}
		// AWS launches; the answer is lost: the caller gives up first.
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		id, _, _ := strings.Cut(rec.Body.String(), "</instanceId>")
		launched <- id[strings.LastIndex(id, ">")+1:]
		cancel()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := ec2.NewClients(context.Background(), ec2test.Region, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	x := w.executor(t, w.config(), ec2.Options{Clients: c})
	_, err = x.Prepare(ctx, executors.JobSpec{RunID: "run-lost", Job: "j", RunDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare = %v, want context.Canceled", err)
	}
	select {
	case id := <-launched:
		if !strings.HasPrefix(id, "i-") {
			t.Fatalf("RunInstances answered no instance: %q", id)
		}
		gone(t, w, id)
	default:
		t.Fatal("RunInstances was not called")
	}
}

func TestSSHTimeout(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{SSHTimeout: time.Second})
	w.booter.Hold("never-boots", true)
	runDir := t.TempDir()
	_, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-sshto", Job: "never-boots", RunDir: runDir})
	if err == nil || !strings.Contains(err.Error(), "did not answer within 1s") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("Prepare = %v", err)
	}
	gone(t, w, records(t, runDir)[0].InstanceID)
}

// TestInstanceGoneBeforeSSH terminates an instance while nixflow waits
// for its ssh: the wait ends at the next look at its state, saying so,
// not after the ssh timeout with a hint about security groups.
func TestInstanceGoneBeforeSSH(t *testing.T) {
	w := setup(t)
	t.Parallel()
	x := w.executor(t, w.config(), ec2.Options{StatePoll: 200 * time.Millisecond})
	w.booter.Hold("goes", true)
	runDir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		_, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-goes", Job: "goes", RunDir: runDir,
			Log: func(m string) {
				if strings.HasPrefix(m, "waiting for ssh") {
					recs := records(t, runDir)
					if _, err := w.clients.EC2.TerminateInstances(context.Background(), &awsec2.TerminateInstancesInput{InstanceIds: []string{recs[0].InstanceID}}); err != nil {
						t.Error(err)
					}
				}
			}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "before ssh answered") || strings.Contains(err.Error(), "did not answer within") {
			t.Fatalf("Prepare = %v, want the instance's state", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Prepare did not notice the instance was gone")
	}
}

func TestSharedMode(t *testing.T) {
	w := setup(t)
	t.Parallel()
	cfg := w.config()
	cfg.Mode = "shared"
	x := w.executor(t, cfg, ec2.Options{})
	runDir := t.TempDir()
	var wss []executors.Workspace
	for _, job := range []string{"a", "b"} {
		ws, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-shared", Job: job, RunDir: runDir})
		if err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}
	recs := records(t, runDir)
	if len(recs) != 1 || wss[0].Where() != wss[1].Where() {
		t.Fatalf("want one instance for both jobs: %+v, %q, %q", recs, wss[0].Where(), wss[1].Where())
	}
	for _, ws := range wss {
		if err := ws.Teardown(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	if describe(t, w, recs[0].InstanceID).State.Name != types.InstanceStateNameRunning {
		t.Errorf("the shared instance ended before Close")
	}
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone(t, w, recs[0].InstanceID)
}

// faults is a proxy in front of moto that answers the first RunInstances
// calls with the given error codes.
func faults(t *testing.T, w *world, codes ...string) (*ec2.Clients, *atomic.Int32) {
	t.Helper()
	c, calls, _ := proxied(t, w, codes...)
	return c, calls
}

// proxied is faults, also returning the bodies of the requests made.
func proxied(t *testing.T, w *world, codes ...string) (*ec2.Clients, *atomic.Int32, func() []string) {
	t.Helper()
	var bodies []string
	target, _ := url.Parse(w.moto.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls atomic.Int32
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		if strings.Contains(string(body), "Action=RunInstances") {
			calls.Add(1)
			mu.Lock()
			var code string
			if len(codes) > 0 {
				code, codes = codes[0], codes[1:]
			}
			mu.Unlock()
			if code != "" {
				status := http.StatusBadRequest
				switch code {
				case "RequestLimitExceeded":
					status = http.StatusServiceUnavailable
				case "InsufficientInstanceCapacity":
					// As AWS answers it: a server error, which the SDK
					// would retry on its own.
					status = http.StatusInternalServerError
				}
				rw.WriteHeader(status)
				fmt.Fprintf(rw, `<Response><Errors><Error><Code>%s</Code><Message>injected</Message></Error></Errors><RequestID>x</RequestID></Response>`, code)
				return
			}
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	c, err := ec2.NewClients(context.Background(), ec2test.Region, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(bodies)
	}
}

func TestThrottlingAndCapacity(t *testing.T) {
	w := setup(t)
	t.Parallel()
	t.Run("RetriedThenLaunched", func(t *testing.T) {
		c, calls := faults(t, w, "RequestLimitExceeded", "InsufficientInstanceCapacity")
		x := w.executor(t, w.config(), ec2.Options{Clients: c})
		runDir := t.TempDir()
		ws, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-retry", Job: "j", RunDir: runDir})
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Teardown(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("RunInstances called %d times, want 3", n)
		}
		if recs := records(t, runDir); len(recs) != 1 {
			t.Errorf("launched %d instances, want 1", len(recs))
		}
	})
	t.Run("CapacityReported", func(t *testing.T) {
		c, calls := faults(t, w, "InsufficientInstanceCapacity", "InsufficientInstanceCapacity", "InsufficientInstanceCapacity")
		x := w.executor(t, w.config(), ec2.Options{Clients: c})
		runDir := t.TempDir()
		_, err := x.Prepare(context.Background(), executors.JobSpec{RunID: "run-ice", Job: "j", RunDir: runDir})
		if err == nil || !strings.Contains(err.Error(), "no capacity for t3.micro after 3 tries") || !strings.Contains(err.Error(), "hint: try another instanceType") {
			t.Fatalf("Prepare = %v", err)
		}
		if recs := records(t, runDir); len(recs) != 0 {
			t.Errorf("records: %+v", recs)
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("RunInstances called %d times, want 3 (nixflow's tries, each once)", n)
		}
	})
}

// launchOrphan launches an instance as a killed nixflow would have left it.
func launchOrphan(t *testing.T, w *world, runID, expires string) string {
	t.Helper()
	tags := []types.Tag{{Key: aws.String(ec2.TagRunID), Value: aws.String(runID)}}
	if expires != "" {
		tags = append(tags, types.Tag{Key: aws.String(ec2.TagExpiresAt), Value: aws.String(expires)})
	}
	out, err := w.clients.EC2.RunInstances(context.Background(), &awsec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType:      types.InstanceTypeT3Micro,
		UserData:          aws.String(base64.StdEncoding.EncodeToString([]byte(ec2.UserData("ssh-ed25519 AAAA test", time.Hour)))),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// TestReap is not parallel: --older-than reaps every instance of
// nixflow's, those of the other tests too. Parallel tests start after it.
func TestReap(t *testing.T) {
	w := setup(t)
	now := time.Now().UTC()
	future := now.Add(time.Hour).Format(time.RFC3339)
	over := launchOrphan(t, w, "run-over", future)
	expired := launchOrphan(t, w, "run-live", now.Add(-time.Minute).Format(time.RFC3339))
	unreadable := launchOrphan(t, w, "run-live", "")
	live := launchOrphan(t, w, "run-live", future)
	runOver := func(run string) bool { return run == "run-over" }

	found, err := ec2.Reap(context.Background(), w.clients, ec2.ReapOptions{DryRun: true, RunOver: runOver})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, f := range found {
		reasons[f.InstanceID] = f.Reason
		if f.Terminated {
			t.Errorf("dry run terminated %s", f.InstanceID)
		}
	}
	want := map[string]string{over: "run over", expired: "expired", unreadable: "no readable expiry"}
	for id, r := range want {
		if reasons[id] != r {
			t.Errorf("reason for %s = %q, want %q", id, reasons[id], r)
		}
	}
	if _, ok := reasons[live]; ok {
		t.Errorf("the live run's instance would be reaped")
	}
	if describe(t, w, over).State.Name == types.InstanceStateNameTerminated {
		t.Fatal("dry run terminated an instance")
	}
	found, err = ec2.Reap(context.Background(), w.clients, ec2.ReapOptions{RunOver: runOver})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if want[f.InstanceID] != "" && !f.Terminated {
			t.Errorf("%s not terminated", f.InstanceID)
		}
	}
	for id := range want {
		gone(t, w, id)
	}
	found, err = ec2.Reap(context.Background(), w.clients, ec2.ReapOptions{OlderThan: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 || !slices.ContainsFunc(found, func(r ec2.Reaped) bool { return r.InstanceID == live && r.Terminated }) {
		t.Errorf("--older-than did not reap %s: %+v", live, found)
	}
}

func TestImageUploadedRegisteredReused(t *testing.T) {
	w := setup(t)
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "0123456789abcdfghijklmnpqrsvwxyz-machine")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	// Three blocks of 512 KiB, the middle one zeros, and a short tail.
	img := make([]byte, 3*512<<10+100)
	for i := range 512 << 10 {
		img[i] = byte(i)
	}
	copy(img[2*512<<10:], "boot")
	img[len(img)-1] = 1
	if err := os.WriteFile(filepath.Join(store, "disk.img"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	c, _, bodies := proxied(t, w)
	id, err := ec2.EnsureImage(context.Background(), c, store, ec2.ImageOptions{Logf: logf, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(logs, "uploaded 3 of 4 blocks (the others are zeros)") {
		t.Errorf("logs: %q", logs)
	}
	out, err := w.clients.EC2.DescribeImages(context.Background(), &awsec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describe %s: %v", id, err)
	}
	if h := tagMap(out.Images[0].Tags)[ec2.TagImageHash]; h != "0123456789abcdfghijklmnpqrsvwxyz" {
		t.Errorf("image hash tag = %q", h)
	}
	// moto does not give these back: the request must have them.
	k := slices.IndexFunc(bodies(), func(b string) bool { return strings.Contains(b, "Action=RegisterImage") })
	if k < 0 {
		t.Fatal("no RegisterImage call")
	}
	for _, p := range []string{"Architecture=x86_64", "EnaSupport=true", "VirtualizationType=hvm", "RootDeviceName=%2Fdev%2Fxvda"} {
		if !strings.Contains(bodies()[k], p) {
			t.Errorf("RegisterImage without %s: %s", p, bodies()[k])
		}
	}
	logs = nil
	again, err := ec2.EnsureImage(context.Background(), w.clients, store, ec2.ImageOptions{Logf: logf})
	if err != nil || again != id {
		t.Fatalf("second EnsureImage = %q, %v; want %q reused", again, err, id)
	}
	if len(logs) != 1 || !strings.HasPrefix(logs[0], "reusing "+id) {
		t.Errorf("logs: %q", logs)
	}
	images, err := ec2.ListImages(context.Background(), w.clients)
	if err != nil {
		t.Fatal(err)
	}
	k = slices.IndexFunc(images, func(i ec2.Image) bool { return i.ID == id })
	if k < 0 || images[k].InUse || len(images[k].Snapshots) != 1 {
		t.Fatalf("images: %+v", images)
	}
	if err := ec2.DeleteImage(context.Background(), w.clients, images[k]); err != nil {
		t.Fatal(err)
	}
}

func TestFindDiskImage(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "nix-support"), 0o755)
	os.WriteFile(filepath.Join(dir, "nix-support", "image-info.json"), []byte(`{"file": "/x/nixos.vhd", "system": "aarch64-linux", "boot_mode": "uefi"}`), 0o644)
	if _, err := ec2.FindDiskImage(dir); err == nil || !strings.Contains(err.Error(), `amazonImage.format = "raw"`) {
		t.Errorf("vhd: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "nix-support", "image-info.json"), []byte(`{"file": "/x/nixos.img", "system": "aarch64-linux", "boot_mode": "uefi"}`), 0o644)
	img, err := ec2.FindDiskImage(dir)
	if err != nil || img.File != "/x/nixos.img" || img.Architecture != "arm64" || img.BootMode != "uefi" {
		t.Errorf("image-info: %+v %v", img, err)
	}
	empty := t.TempDir()
	if _, err := ec2.FindDiskImage(empty); err == nil || !strings.Contains(err.Error(), "found 0 raw disk images") {
		t.Errorf("empty: %v", err)
	}
}

func TestUserData(t *testing.T) {
	ud := ec2.UserData("ssh-ed25519 AAAAkey nixflow-r", 90*time.Second)
	if got := ec2test.AuthorizedKeys(ud); !slices.Equal(got, []string{"ssh-ed25519 AAAAkey nixflow-r"}) {
		t.Errorf("keys = %q", got)
	}
	if !strings.Contains(ud, `[ shutdown, -h, "+2",`) {
		t.Errorf("a lifetime of 90s must round up to 2 minutes:\n%s", ud)
	}
}

// TestGuardSweep: the watchdog of a killed nixflow terminates what its
// notes say nixflow launched and did not terminate, marks their records
// terminated and removes the run's keys; an instance whose RunInstances
// call was under way (sent, never answered) it finds by its client
// token. An instance noted terminated it leaves alone. (The instances
// are of no run and no subnet of the tests: no other test's reap or
// booter takes them.)
func TestGuardSweep(t *testing.T) {
	w := setup(t)
	t.Parallel()
	launch := func(token string) string {
		in := &awsec2.RunInstancesInput{
			ImageId: aws.String("ami-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			InstanceType: types.InstanceTypeT3Micro,
		}
		if token != "" {
			in.ClientToken = aws.String(token)
		}
		out, err := w.clients.EC2.RunInstances(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		t.Cleanup(func() {
			w.clients.EC2.TerminateInstances(context.Background(), &awsec2.TerminateInstancesInput{InstanceIds: []string{id}})
		})
		return id
	}
	runDir := t.TempDir()
	// Noted launched, its call's answer not yet noted (nixflow killed
	// between the two notes).
	launchedToken := "nixflow-test-guard-launched-" + strconv.Itoa(os.Getpid())
	launched := launch(launchedToken)
	if err := ec2.WriteRecord(runDir, ec2.Record{InstanceID: launched, Region: ec2test.Region, RunID: "run-guard", Launched: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(ec2.KeysDir(runDir), "k", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	unanswered := "nixflow-test-guard-" + strconv.Itoa(os.Getpid())
	lost := launch(unanswered)
	done := launch("")
	notes := []string{
		ec2.LaunchNote(launchedToken), ec2.InstanceNote(launched, runDir),
		ec2.LaunchNote(unanswered),
		ec2.InstanceNote(done, ""), ec2.TerminatedNote(done),
	}
	// Calls that never launched anything (never sent, or answered with
	// no capacity while nixflow died): looked for together, for 15 s at
	// most, they keep the guard from nothing.
	for i := range 20 {
		notes = append(notes, ec2.LaunchNote("nixflow-test-never-"+strconv.Itoa(i)))
	}
	ec2.SweepInstances([]string{ec2test.Region, w.moto.Endpoint, "123"}, notes)
	gone(t, w, launched)
	gone(t, w, lost)
	if st := describe(t, w, done).State.Name; st != types.InstanceStateNameRunning {
		t.Errorf("instance %s, noted terminated, is %s: the watchdog touched it", done, st)
	}
	recs := records(t, runDir)
	if len(recs) != 1 || recs[0].Terminated.IsZero() {
		t.Errorf("records after the sweep: %+v, want %s's marked terminated", recs, launched)
	}
	if _, err := os.Stat(ec2.KeysDir(runDir)); !os.IsNotExist(err) {
		t.Errorf("the run's keys are still there: %v", err)
	}
}
