package ec2

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nixflow/nixflow/executors"
	"github.com/nixflow/nixflow/executors/ssh"
	"github.com/nixflow/nixflow/executors/watchdog"
)

// Tags nixflow sets on what it launches. `nixflow ec2 reap` finds
// instances by TagRunID.
const (
	TagRunID = "nixflow:run-id"
	TagJob   = "nixflow:job"
	// TagExecutor names the executor of a shared instance (which has no
	// job of its own).
	TagExecutor  = "nixflow:executor"
	TagOwner     = "nixflow:owner"
	TagExpiresAt = "nixflow:expires-at"
	TagImageHash = "nixflow:image-hash"
	TagStorePath = "nixflow:store-path"
)

// instance is one launched instance and the executor that runs jobs on it.
type instance struct {
	id, address string
	clients     *Clients
	runDir      string
	keyDir      string
	rec         Record
	inner       executors.Executor
	user        string
	port        int
	backoff     func(int) time.Duration
	log         func(string, ...any)

	// guard is told of the instance's termination.
	guard *watchdog.Guard

	once    sync.Once
	termErr error
}

func (i *instance) where() string {
	return fmt.Sprintf("ec2 %s (%s@%s)", i.id, i.user, i.address)
}

// launch launches an instance for spec, waits for it to run and answer
// SSH, and connects the SSH executor to it. On any failure, a launched
// instance is terminated before launch returns.
func (x *Executor) launch(ctx context.Context, spec executors.JobSpec, label string) (*instance, error) {
	c, err := x.awsClients(ctx)
	if err != nil {
		return nil, err
	}
	return x.start(ctx, c, spec, label)
}

func (x *Executor) start(ctx context.Context, c *Clients, spec executors.JobSpec, label string) (*instance, error) {
	ami, err := x.imageID(ctx, c, spec)
	if err != nil {
		return nil, err
	}
	// The key lives in a private directory (0700) of the run's that is
	// removed with the instance; should nixflow be killed, `nixflow ec2
	// reap` (or gc) removes it with the run's other keys.
	keyDir, err := makeKeyDir(spec.RunDir)
	if err != nil {
		return nil, err
	}
	pub, err := makeKey(ctx, keyDir, spec.RunID)
	if err != nil {
		removeKeyDir(keyDir)
		return nil, err
	}
	now := time.Now().UTC()
	expires := now.Add(time.Duration(x.cfg.MaxLifetime))
	in, err := x.runInput(ctx, c, ami, pub, spec, label, expires)
	if err != nil {
		removeKeyDir(keyDir)
		return nil, err
	}
	spec.Logf("launching %s instance from %s", x.cfg.InstanceType, ami)
	x.startGuard(c)
	out, err := x.runInstances(ctx, c, in)
	if err != nil {
		removeKeyDir(keyDir)
		return nil, err
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	x.guard.Note(instanceNote(id, spec.RunDir))
	x.guard.Note(answeredNote(aws.ToString(in.ClientToken)))
	inst := &instance{
		id: id, clients: c, runDir: spec.RunDir, keyDir: keyDir, guard: x.guard,
		user: x.cfg.SSHUser, port: x.cfg.SSHPort, backoff: x.opts.Backoff, log: spec.Logf,
		rec: Record{
			InstanceID: id, Region: c.Region, Endpoint: x.cfg.Endpoint, RunID: spec.RunID,
			Launched: now, ExpiresAt: expires, PID: os.Getpid(),
		},
	}
	if x.cfg.Mode == "shared" {
		inst.rec.Executor = label
	} else {
		inst.rec.Job = spec.Job
	}
	// Recorded before anything else, so that a run killed from here on
	// still says what it launched.
	recErr := writeRecord(spec.RunDir, inst.rec)
	ok := false
	defer func() {
		if !ok {
			inst.close(spec.Logf)
		}
	}()
	if recErr != nil {
		return nil, fmt.Errorf("record instance %s: %w", id, recErr)
	}
	x.log.Info("launched", "instance", id, "job", spec.Job, "ami", ami)
	spec.Logf("launched %s", id)
	if err := x.waitRunning(ctx, inst); err != nil {
		return nil, err
	}
	if err := x.waitSSH(ctx, inst, spec.Logf); err != nil {
		return nil, err
	}
	inner, err := x.opts.Connect(inst.target(), executors.Params{
		Config: nil, Name: x.p.Name, RunID: x.p.RunID, RunDir: x.p.RunDir,
		Logger: x.log.Named("ssh").With("instance", id),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", id, err)
	}
	inst.inner = inner
	ok = true
	return inst, nil
}

// makeKey makes the run's ed25519 key pair in dir and returns the public
// key line.
func makeKey(ctx context.Context, dir, runID string) (string, error) {
	key := filepath.Join(dir, "id_ed25519")
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nixflow-"+runID, "-f", key))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ssh-keygen: %w: %s", err, bytes.TrimSpace(out))
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(pub)), nil
}

// UserData is the cloud-init document an instance boots with: the run's
// public key for sshUser and a shutdown timer that ends the instance after
// lifetime (rounded up to a minute), whatever happens to nixflow. It holds
// nothing secret.
func UserData(publicKey string, lifetime time.Duration) string {
	minutes := int(math.Ceil(lifetime.Minutes()))
	if minutes < 1 {
		minutes = 1
	}
	return fmt.Sprintf(`#cloud-config
# nixflow: an ephemeral instance, terminated when its job ends.
ssh_authorized_keys:
  - %s
bootcmd:
  - [ shutdown, -h, "+%d", "nixflow: maxLifetime reached" ]
`, publicKey, minutes)
}

// owner names who launched an instance: user@host.
func owner() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// tagSpec lists the instance's tags: the user's, then nixflow's, which win.
func (x *Executor) tags(spec executors.JobSpec, label string, expires time.Time) []types.Tag {
	m := map[string]string{}
	for k, v := range x.cfg.Tags {
		m[k] = v
	}
	m["Name"] = "nixflow " + spec.RunID + " " + label
	m[TagRunID] = spec.RunID
	m[TagOwner] = owner()
	m[TagExpiresAt] = expires.Format(time.RFC3339)
	if x.cfg.Mode == "shared" {
		m[TagExecutor] = label
	} else {
		m[TagJob] = spec.Job
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

func (x *Executor) runInput(ctx context.Context, c *Clients, ami, pub string, spec executors.JobSpec, label string, expires time.Time) (*ec2.RunInstancesInput, error) {
	tags := x.tags(spec, label, expires)
	in := &ec2.RunInstancesInput{
		ImageId:                           aws.String(ami),
		InstanceType:                      types.InstanceType(x.cfg.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte(UserData(pub, time.Duration(x.cfg.MaxLifetime))))),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
	}
	if x.cfg.SubnetID != "" {
		in.SubnetId = aws.String(x.cfg.SubnetID)
	}
	if len(x.cfg.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = x.cfg.SecurityGroupIDs
	}
	if x.cfg.KeyName != "" {
		in.KeyName = aws.String(x.cfg.KeyName)
	}
	if x.cfg.Spot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{
			MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{
				SpotInstanceType:             types.SpotInstanceTypeOneTime,
				InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
			},
		}
	}
	if x.cfg.RootVolumeSize > 0 {
		out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
		if err != nil {
			return nil, fmt.Errorf("describe image %q: %w", ami, err)
		}
		if len(out.Images) == 0 || out.Images[0].RootDeviceName == nil {
			return nil, fmt.Errorf("image %q not found or without a root device, needed for rootVolumeSize", ami)
		}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{
			DeviceName: out.Images[0].RootDeviceName,
			Ebs: &types.EbsBlockDevice{
				VolumeSize:          aws.Int32(int32(x.cfg.RootVolumeSize)),
				DeleteOnTermination: aws.Bool(true),
				VolumeType:          types.VolumeTypeGp3,
			},
		}}
	}
	return in, nil
}

// capacityTries is how many times a launch is tried while AWS has no
// capacity for the instance type.
const capacityTries = 3

// runInstances calls RunInstances with a ClientToken, so that a retried
// call (the SDK retries throttled and failed requests) cannot launch twice,
// and tries again a few times when AWS has no capacity. When the call
// fails without an answer from AWS (cancelled, connection lost), an
// instance it may have launched is looked up by its token and terminated.
func (x *Executor) runInstances(ctx context.Context, c *Clients, in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	for try := 1; ; try++ {
		token := newToken()
		in.ClientToken = aws.String(token)
		x.guard.Note(launchNote(token))
		out, err := c.EC2.RunInstances(ctx, in, noCapacityRetries)
		if err != nil && apiCode(err) != "" {
			// AWS answered: nothing launched.
			x.guard.Note(answeredNote(token))
		} else if err != nil {
			// No answer: dealt with below (terminateByToken) by the time
			// this returns, which it does.
			defer x.guard.Note(answeredNote(token))
		}
		if err == nil {
			if len(out.Instances) != 1 {
				return nil, fmt.Errorf("RunInstances returned %d instances, want 1", len(out.Instances))
			}
			return out, nil
		}
		code := apiCode(err)
		if code == "" {
			if NoCredentials(err) {
				// Nothing was sent: there is nothing to look for.
				return nil, fmt.Errorf("launch instance: %w\nhint: %s", err, CredentialsHint)
			}
			var dns *net.DNSError
			if errors.As(err, &dns) {
				// The endpoint's name did not resolve: nothing was sent.
				return nil, fmt.Errorf("launch instance: %w\nhint: check the region (%q) and the endpoint, if one is set", err, c.Region)
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				// No connection, nothing sent: nothing to look for.
				return nil, fmt.Errorf("launch instance: %w", err)
			}
			x.terminateByToken(c, aws.ToString(in.ClientToken))
			return nil, fmt.Errorf("launch instance: %w", err)
		}
		if !capacityCodes[code] {
			return nil, fmt.Errorf("launch instance: %w", err)
		}
		if try >= capacityTries {
			return nil, fmt.Errorf("launch instance: no capacity for %s after %d tries (%s): %w\nhint: try another instanceType or subnetId (availability zone), or try again later",
				x.cfg.InstanceType, try, code, err)
		}
		x.log.Warn("no capacity, trying again", "instance_type", x.cfg.InstanceType, "code", code, "try", try)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("launch instance: %w", ctx.Err())
		case <-time.After(x.opts.Backoff(try)):
		}
	}
}

// noCapacityRetries keeps the SDK from retrying a RunInstances that
// found no capacity (AWS answers it as a server error, which the SDK
// retries ten times): nixflow's own tries, with their backoff and their
// word, decide (capacityTries calls, not ten times as many).
func noCapacityRetries(o *ec2.Options) {
	if r, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = capacityNotRetried{r}
	}
}

type capacityNotRetried struct{ aws.RetryerV2 }

func (r capacityNotRetried) IsErrorRetryable(err error) bool {
	return !capacityCodes[apiCode(err)] && r.RetryerV2.IsErrorRetryable(err)
}

// terminateByToken terminates whatever a RunInstances call with token
// launched, when its answer was lost.
func (x *Executor) terminateByToken(c *Clients, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := lookUpTokens(ctx, c, []string{token})
	if err != nil {
		x.log.Error("look up an instance whose launch was interrupted; run 'nixflow ec2 reap'", "error", err)
		return
	}
	if len(ids) == 0 {
		x.log.Warn("a launch was interrupted and no instance of it shows yet; if one shows later, 'nixflow ec2 reap' terminates it (its run is over)")
		return
	}
	if _, err := c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		x.log.Error("terminate an instance whose launch was interrupted; run 'nixflow ec2 reap'", "instances", ids, "error", err)
	}
}

// tokenLookups are the waits before each look for the instance of an
// interrupted launch.
var tokenLookups = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "nixflow-" + hex.EncodeToString(b)
}

// waitRunning waits (bounded) for the instance to run and picks its
// address.
func (x *Executor) waitRunning(ctx context.Context, inst *instance) error {
	w := ec2.NewInstanceRunningWaiter(inst.clients.EC2, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.id}}, x.opts.BootTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wait for %s to run: %w", inst.id, ctx.Err())
		}
		return fmt.Errorf("wait for %s to run: %w", inst.id, err)
	}
	if len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		return fmt.Errorf("instance %s vanished", inst.id)
	}
	i := out.Reservations[0].Instances[0]
	public, private := aws.ToString(i.PublicIpAddress), aws.ToString(i.PrivateIpAddress)
	switch x.cfg.Address {
	case "public":
		inst.address = public
	case "private":
		inst.address = private
	default:
		inst.address = public
		if public == "" {
			inst.address = private
		}
	}
	if inst.address == "" {
		return fmt.Errorf("instance %s has no %s address\nhint: set address, or launch into a subnet that gives one", inst.id, x.cfg.Address)
	}
	return nil
}

// sshOptions are the ssh client options (-o values) for an instance: its
// own key only, and its own known_hosts (the host key is trusted on first
// use: the instance is new and reached at the address AWS gave).
func (i *instance) sshOptions() []string {
	return []string{
		"IdentitiesOnly=yes",
		"StrictHostKeyChecking=accept-new",
		"UserKnownHostsFile=" + filepath.Join(i.keyDir, "known_hosts"),
	}
}

func (i *instance) target() ssh.Target {
	return ssh.Target{
		Host: i.address, User: i.user, Port: i.port,
		IdentityFile: filepath.Join(i.keyDir, "id_ed25519"),
		Options:      i.sshOptions(),
	}
}

// waitSSH waits, bounded by SSHTimeout, until ssh logs in to the instance,
// saying so every 30 seconds.
func (x *Executor) waitSSH(ctx context.Context, inst *instance, logf func(string, ...any)) error {
	logf("waiting for ssh on %s", inst.address)
	start := time.Now()
	deadline := start.Add(x.opts.SSHTimeout)
	nextNote := start.Add(30 * time.Second)
	nextState := start.Add(x.opts.StatePoll)
	var last string
	for {
		args := []string{"-i", filepath.Join(inst.keyDir, "id_ed25519"), "-p", strconv.Itoa(inst.port)}
		for _, o := range append(inst.sshOptions(), "BatchMode=yes", "ConnectTimeout=5", "LogLevel=ERROR") {
			args = append(args, "-o", o)
		}
		args = append(args, "-l", inst.user, "--", inst.address, "true")
		cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "ssh", args...))
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err == nil {
			logf("ssh on %s is up after %s", inst.address, time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		last = strings.TrimSpace(string(out))
		if ctx.Err() != nil {
			return fmt.Errorf("wait for ssh on %s: %w", inst.address, ctx.Err())
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("instance %s: ssh on %s did not answer within %s: %s\nhint: check that the subnet and security groups let this machine reach port %d, and that the image runs cloud-init (or reads its user data) for user %q",
				inst.id, inst.address, x.opts.SSHTimeout, last, inst.port, inst.user)
		}
		if now.After(nextNote) {
			logf("still waiting for ssh on %s (%s)", inst.address, now.Sub(start).Round(time.Second))
			nextNote = now.Add(30 * time.Second)
		}
		if now.After(nextState) {
			// An instance that stopped or went (a spot reclaim, a
			// console click, a failed boot) will never answer.
			if err := inst.gone(ctx); err != nil {
				return err
			}
			nextState = now.Add(x.opts.StatePoll)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ssh on %s: %w", inst.address, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// gone returns an error when the instance has stopped or is going (its
// state, and the reason AWS gives), nil while it runs or when the state
// cannot be read.
func (i *instance) gone(ctx context.Context) error {
	out, err := i.clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{i.id}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		return nil
	}
	in := out.Reservations[0].Instances[0]
	if in.State == nil {
		return nil
	}
	switch in.State.Name {
	case types.InstanceStateNamePending, types.InstanceStateNameRunning:
		return nil
	}
	why := ""
	if in.StateReason != nil && in.StateReason.Message != nil {
		why = ": " + *in.StateReason.Message
	}
	return fmt.Errorf("instance %s is %s before ssh answered%s", i.id, in.State.Name, why)
}

// terminateTries is how many times termination is tried.
const terminateTries = 5

// close closes the executor on the instance and terminates the instance,
// once, with its own context (the caller's may be cancelled with the
// run), retrying failures; the record in the run directory says whether it
// worked. logf may be nil.
func (i *instance) close(logf func(string, ...any)) error {
	i.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// The key is of no use once the instance is gone, or going.
		defer removeKeyDir(i.keyDir)
		if i.inner != nil {
			if err := i.inner.Close(ctx); err != nil {
				i.termErr = fmt.Errorf("close ssh to %s: %w", i.id, err)
			}
		}
		var err error
		for try := 1; try <= terminateTries; try++ {
			_, err = i.clients.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{i.id}})
			if err == nil || apiCode(err) == "InvalidInstanceID.NotFound" {
				err = nil
				break
			}
			if try < terminateTries {
				select {
				case <-ctx.Done():
				case <-time.After(i.backoff(try)):
				}
			}
		}
		if err != nil {
			i.rec.Error = err.Error()
			_ = writeRecord(i.runDir, i.rec)
			i.termErr = errors.Join(i.termErr, fmt.Errorf("terminate instance %s: %w\nhint: run 'nixflow ec2 reap'; its shutdown timer ends it by %s at the latest",
				i.id, err, i.rec.ExpiresAt.Format(time.RFC3339)))
			return
		}
		i.guard.Note(terminatedNote(i.id))
		i.rec.Terminated, i.rec.Error = time.Now().UTC(), ""
		if werr := writeRecord(i.runDir, i.rec); werr != nil {
			i.termErr = errors.Join(i.termErr, fmt.Errorf("record termination of %s: %w", i.id, werr))
		}
		if logf != nil {
			logf("terminated %s", i.id)
		}
	})
	return i.termErr
}
