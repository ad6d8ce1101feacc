// Package ec2test runs the EC2 executor's tests without AWS: a moto server
// serves the EC2 and EBS APIs on a loopback port, and a Booter plays the
// boot of the instances launched into a loopback subnet: for each running
// instance it starts a real sshd on the instance's (loopback) address with
// the public key from the instance's user data, and stops it when the
// instance is terminated. No machine boots; what runs "on" an instance runs
// on this machine, as the user running the tests.
package ec2test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nixflow/nixflow/executors/ec2"
	"github.com/nixflow/nixflow/internal/sshdtest"
)

// Region is the region of the tests.
const Region = "us-east-1"

// MotoAvailable reports whether python3 can run moto, and why not.
func MotoAvailable() (bool, string) {
	out, err := exec.Command("python3", "-c", "import moto").CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("python3 -c 'import moto': %v: %s", err, strings.TrimSpace(string(out)))
	}
	return true, ""
}

// Moto is a moto server on a loopback port.
type Moto struct {
	Endpoint string
	cmd      *exec.Cmd
	log      string
}

// motoMain runs moto's server after teaching it the DescribeInstances
// filter "client-token", which AWS has and moto lacks (it answers 500):
// nixflow looks up an instance whose launch answer was lost by it.
const motoMain = `import sys
from moto.ec2 import utils
utils.filter_dict_attribute_mapping.setdefault("client-token", "client_token")
from moto.server import main
sys.argv[0] = "moto_server"
main(sys.argv[1:])
`

// StartMoto starts moto's server (as `python3 -m moto.server` would) on
// a free loopback port and waits until it answers.
func StartMoto() (*Moto, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.CreateTemp("", "nixflow-moto-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("python3", "-c", motoMain, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.Remove(logf.Name())
		return nil, fmt.Errorf("start moto: %w", err)
	}
	logf.Close()
	m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, log: logf.Name()}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(m.log)
			m.Close()
			return nil, fmt.Errorf("moto did not answer on %s within 60s: %s", m.Endpoint, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops the server.
func (m *Moto) Close() {
	if m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		_ = m.cmd.Wait()
	}
	os.Remove(m.log)
}

// Env is the environment that points the AWS SDK (and nixflow) at the
// server, with fake credentials.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// Clients are clients of the server, with fake static credentials.
func (m *Moto) Clients() *ec2.Clients {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return &ec2.Clients{
		Region: Region,
		EC2:    awsec2.NewFromConfig(cfg, func(o *awsec2.Options) { o.BaseEndpoint = aws.String(m.Endpoint) }),
		EBS:    ebs.NewFromConfig(cfg, func(o *ebs.Options) { o.BaseEndpoint = aws.String(m.Endpoint) }),
	}
}

// Network makes a VPC and a subnet in a loopback range picked at random
// in 127.160.0.0-127.199.255.255 (so that test processes running at the
// same time do not share addresses) and returns the subnet's id and its
// prefix ("127.171.23.").
func Network(ctx context.Context, c *ec2.Clients) (subnetID, prefix string, err error) {
	a, b := 160+rand.IntN(40), 1+rand.IntN(250)
	vpc, err := c.EC2.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("127.%d.0.0/16", a))})
	if err != nil {
		return "", "", fmt.Errorf("create vpc: %w", err)
	}
	sn, err := c.EC2.CreateSubnet(ctx, &awsec2.CreateSubnetInput{
		VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("127.%d.%d.0/24", a, b)),
	})
	if err != nil {
		return "", "", fmt.Errorf("create subnet: %w", err)
	}
	return aws.ToString(sn.Subnet.SubnetId), fmt.Sprintf("127.%d.%d.", a, b), nil
}

// Booter plays the boot of the instances of one subnet.
type Booter struct {
	c        *ec2.Clients
	subnetID string
	port     int
	dir      string

	mu       sync.Mutex
	hold     map[string]bool
	booted   map[string]*sshd
	userData map[string]string
	errs     []error

	stop chan struct{}
	done chan struct{}
}

type sshd struct {
	cmd    *exec.Cmd
	addr   string
	killed sync.Once
}

// StartBooter starts watching the subnet's instances; sshd listens on
// port of each instance's private address.
func StartBooter(c *ec2.Clients, subnetID string, port int) (*Booter, error) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nixflow-booter-")
	if err != nil {
		return nil, err
	}
	b := &Booter{
		c: c, subnetID: subnetID, port: port, dir: dir,
		booted: map[string]*sshd{}, userData: map[string]string{}, hold: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.loop()
	return b, nil
}

// Hold stops (true) or resumes (false) booting the instances of a job
// (tagged nixflow:job=job): a held instance runs, but SSH never answers,
// as on a machine still booting.
func (b *Booter) Hold(job string, hold bool) {
	b.mu.Lock()
	b.hold[job] = hold
	b.mu.Unlock()
}

// UserData returns the user data of every instance seen, by id.
func (b *Booter) UserData() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]string, len(b.userData))
	for k, v := range b.userData {
		m[k] = v
	}
	return m
}

// Booted lists the instances whose sshd runs.
func (b *Booter) Booted() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id := range b.booted {
		ids = append(ids, id)
	}
	return ids
}

// Kill makes instance id die as a machine does (a spot reclaim, a
// kernel panic): its sshd and everything under it are killed at once.
// EC2 still has it running; it reports whether the instance had booted.
func (b *Booter) Kill(id string) bool {
	b.mu.Lock()
	s, ok := b.booted[id]
	b.mu.Unlock()
	if ok {
		s.kill()
		if err := sshdtest.KillSessions(s.addr, b.port); err != nil {
			b.mu.Lock()
			b.errs = append(b.errs, err)
			b.mu.Unlock()
		}
	}
	return ok
}

// Dir is where the "instances" keep their files (their home
// directories, keys and sshd configurations): their disks.
func (b *Booter) Dir() string { return b.dir }

// Err returns what went wrong while booting, if anything.
func (b *Booter) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return errors.Join(b.errs...)
}

// Close stops watching and stops every sshd.
func (b *Booter) Close() {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	for id, s := range b.booted {
		s.kill()
		delete(b.booted, id)
	}
	b.mu.Unlock()
	os.RemoveAll(b.dir)
}

func (b *Booter) loop() {
	defer close(b.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if err := b.poll(); err != nil {
			b.mu.Lock()
			b.errs = append(b.errs, err)
			b.mu.Unlock()
		}
	}
}

func (b *Booter) poll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := b.c.EC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("subnet-id"), Values: []string{b.subnetID}}},
	})
	if err != nil {
		select {
		case <-b.stop:
			return nil
		default:
		}
		return fmt.Errorf("describe instances: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			id := aws.ToString(inst.InstanceId)
			seen[id] = true
			b.mu.Lock()
			s, booted := b.booted[id]
			hold := false
			for _, t := range inst.Tags {
				if aws.ToString(t.Key) == ec2.TagJob {
					hold = b.hold[aws.ToString(t.Value)]
				}
			}
			b.mu.Unlock()
			switch inst.State.Name {
			case types.InstanceStateNameRunning:
				if booted || hold {
					continue
				}
				if err := b.boot(ctx, id, aws.ToString(inst.PrivateIpAddress)); err != nil {
					return fmt.Errorf("boot %s: %w", id, err)
				}
			default:
				if booted {
					s.kill()
					b.mu.Lock()
					delete(b.booted, id)
					b.mu.Unlock()
				}
			}
		}
	}
	return nil
}

// boot starts sshd for an instance, with the key its user data gives.
func (b *Booter) boot(ctx context.Context, id, addr string) error {
	attr, err := b.c.EC2.DescribeInstanceAttribute(ctx, &awsec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return err
	}
	var ud []byte
	if attr.UserData != nil {
		ud, err = base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
		if err != nil {
			return fmt.Errorf("user data: %w", err)
		}
	}
	b.mu.Lock()
	b.userData[id] = string(ud)
	b.mu.Unlock()
	keys := AuthorizedKeys(string(ud))
	if len(keys) == 0 {
		return fmt.Errorf("no ssh_authorized_keys in the user data")
	}
	dir := filepath.Join(b.dir, id)
	// HOME is the instance's own: a slow ~/.bashrc of this machine's
	// user does not weigh on every step.
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 100
MaxStartups 100
PidFile %s
SetEnv HOME=%s
`, b.port, addr, hostKey, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "home"))
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		return err
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", filepath.Join(dir, "sshd_config"), "-E", filepath.Join(dir, "sshd.log"))
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	b.mu.Lock()
	b.booted[id] = &sshd{cmd: cmd, addr: addr}
	b.mu.Unlock()
	return nil
}

// kill stops the "instance": its sshd and what runs under it.
func (s *sshd) kill() {
	s.killed.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	})
}

// AuthorizedKeys returns the keys of the ssh_authorized_keys list of a
// cloud-config document.
func AuthorizedKeys(userData string) []string {
	var keys []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(userData))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ssh_authorized_keys:"):
			in = true
		case in && strings.HasPrefix(strings.TrimSpace(line), "- "):
			keys = append(keys, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")))
		case in && !strings.HasPrefix(line, " "):
			in = false
		}
	}
	return keys
}

// LiveInstances lists the instances of nixflow's (tagged with a run id)
// that are not terminated or shutting down.
func LiveInstances(ctx context.Context, c *ec2.Clients) ([]string, error) {
	out, err := c.EC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{ec2.TagRunID}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	return ids, nil
}
