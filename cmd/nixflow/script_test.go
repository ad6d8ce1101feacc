package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixflow/nixflow/executors/executortest"
	"github.com/nixflow/nixflow/executors/watchdog"
	"github.com/nixflow/nixflow/internal/ocitest"
	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

func TestMain(m *testing.M) {
	// A guard's sentinel runs this binary as /proc/self/fd/4: not a name
	// testscript knows, so the watchdog is found as main finds it.
	if len(os.Args) > 1 && os.Args[1] == watchdog.Arg {
		os.Exit(entry(os.Args))
	}
	testscript.Main(m, map[string]func(){
		"nixflow": func() {
			if os.Getenv("NIXFLOW_TEST_ENGINE") == "script" && len(os.Args) > 1 && os.Args[1] == "run" {
				os.Exit(runCompiled(os.Args[2:]))
			}
			os.Exit(entry(os.Args))
		},
	})
}

// TestScript runs the CLI scripts in testdata/script: each one runs the
// real nixflow binary (this test binary, re-executed) against workflows it
// carries, and compares what it prints byte for byte.
func TestScript(t *testing.T) {
	t.Cleanup(func() {
		if err := ocitest.Remove(); err != nil {
			t.Error(err)
		}
	})
	p := scriptParams("../../testdata/script")
	// One sshd for the scripts that run jobs on an ssh "host": stopped
	// once every script is done (Cleanup runs after parallel subtests).
	srv := startSSHD(t)
	// moto and the boot harness, for the scripts that run jobs on EC2:
	// started by the first that needs them.
	ec2w := newEC2World(t)
	for k, c := range ec2w.cmds() {
		p.Cmds[k] = c
	}
	p.Cmds["sshhost"] = cmdSSHHost
	p.Cmds["sshhostdown"] = cmdSSHHostDown
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if srv != nil {
			env.Setenv("SSH_HOST", srv.Addr)
			env.Setenv("SSH_PORT", strconv.Itoa(srv.Port))
			env.Setenv("SSH_USER", srv.User)
			env.Setenv("SSH_KEY", srv.Key)
		}
		hosts := &scriptHosts{byName: map[string]*sshdtest.Server{}}
		env.Values[scriptHostsKey{}] = hosts
		env.Defer(hosts.stop)
		return setup(env)
	}
	cond := p.Condition
	p.Condition = func(c string) (bool, error) {
		switch c {
		case "sshd":
			return srv != nil, nil
		case "sshns":
			// sshd "hosts" in mount namespaces of their own (sshhost -nix).
			ok, why := sshdtest.NamespacesAvailable()
			if srv != nil && !ok && testenv.Required("sshd") {
				return false, fmt.Errorf("sshd is required (NIXFLOW_TEST_REQUIRE) but its hosts cannot have namespaces: %s", why)
			}
			return srv != nil && ok, nil
		case "moto":
			return ec2w.available()
		}
		return cond(c)
	}
	testscript.Run(t, p)
}

// startSSHD starts the scripts' sshd, if sshd is installed (it must be,
// when NIXFLOW_TEST_REQUIRE lists it).
func startSSHD(t *testing.T) *sshdtest.Server {
	ok, why := sshdtest.Available()
	if !ok {
		if testenv.Required("sshd") {
			t.Fatalf("sshd is required (NIXFLOW_TEST_REQUIRE) but not available: %s", why)
		}
		return nil
	}
	dir, err := os.MkdirTemp("", "nixflow-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sshdtest.Start(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
		os.RemoveAll(dir)
	})
	return srv
}

// scriptHosts are the sshd "hosts" a script started of its own
// (sshhost), stopped when it ends.
type scriptHosts struct {
	byName map[string]*sshdtest.Server
}

type scriptHostsKey struct{}

func (h *scriptHosts) stop() {
	for _, s := range h.byName {
		_ = s.Stop()
	}
}

// cmdTmpfs mounts a tmpfs of SIZE (as mount's size option) on DIR, made
// if need be, unmounted when the script ends however it ends. Root only.
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1], "nixflow-test", dir).CombinedOutput(); err != nil {
		ts.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	ts.Defer(func() {
		if out, err := exec.Command("umount", "--lazy", dir).CombinedOutput(); err != nil {
			ts.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// cmdLocale builds the locale NAME (tr_TR.UTF-8: its source and charmap)
// with localedef in the script's work directory, and points LOCPATH at
// it: a test machine has few locales installed (see the locales
// condition).
func cmdLocale(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: locale NAME.CHARMAP")
	}
	source, charmap, ok := strings.Cut(args[0], ".")
	if !ok {
		ts.Fatalf("locale: %q names no charmap", args[0])
	}
	dir := ts.MkAbs(".locale")
	ts.Check(os.MkdirAll(dir, 0o755))
	out, err := exec.Command("localedef", "-i", source, "-f", charmap, filepath.Join(dir, args[0])).CombinedOutput()
	if err != nil {
		ts.Fatalf("localedef cannot build %s: %v: %s", args[0], err, out)
	}
	ts.Setenv("LOCPATH", dir)
}

// cmdSSHHost starts an sshd "host" of the script's own, on a loopback
// address no other host of the script has, and sets NAME_HOST,
// NAME_PORT and NAME_KEY (NAME upper-cased). With -nix it has a Nix store
// of its own, empty; with -nix-untrusting, one behind a nix-daemon that
// does not trust the user (sshdtest.NixHost).
func cmdSSHHost(ts *testscript.TestScript, neg bool, args []string) {
	var o sshdtest.Options
	if len(args) == 2 && (args[0] == "-nix" || args[0] == "-nix-untrusting") {
		dir := ts.MkAbs(".nixhost-" + args[1])
		ts.Check(os.MkdirAll(dir, 0o755))
		var err error
		o, err = sshdtest.NixHost(dir, args[0] == "-nix-untrusting")
		ts.Check(err)
		args = args[1:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sshhost [-nix | -nix-untrusting] NAME")
	}
	hosts := ts.Value(scriptHostsKey{}).(*scriptHosts)
	name := args[0]
	if hosts.byName[name] != nil {
		ts.Fatalf("sshhost: %s started twice", name)
	}
	for try := 0; ; try++ {
		dir := ts.MkAbs(fmt.Sprintf(".sshd-%s-%d", name, try))
		ts.Check(os.MkdirAll(dir, 0o700))
		s, err := sshdtest.StartWith(dir, o)
		ts.Check(err)
		taken := false
		for _, o := range hosts.byName {
			taken = taken || o.Addr == s.Addr
		}
		if !taken {
			hosts.byName[name] = s
			v := strings.ToUpper(name)
			ts.Setenv(v+"_HOST", s.Addr)
			ts.Setenv(v+"_PORT", strconv.Itoa(s.Port))
			ts.Setenv(v+"_KEY", s.Key)
			return
		}
		ts.Check(s.Stop())
		if try > 10 {
			ts.Fatalf("sshhost: no free loopback address")
		}
	}
}

// cmdSSHHostDown takes down, as a host that goes down (sshd and every
// session killed), the host of the script whose address is in FILE.
func cmdSSHHostDown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sshhostdown FILE")
	}
	addr := strings.TrimSpace(ts.ReadFile(args[0]))
	for _, s := range ts.Value(scriptHostsKey{}).(*scriptHosts).byName {
		if s.Addr == addr {
			ts.Check(s.Kill())
			return
		}
	}
	ts.Fatalf("sshhostdown: no host of the script at %q", addr)
}

// nixlibDir is the Nix library of this source tree.
var nixlibDir, _ = filepath.Abs("../../nixlib")

func scriptParams(dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, ".state"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, ".home"))
			env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
			env.Setenv("NO_COLOR", "")
			// Scripts decide themselves whether they run "in" a hosted CI.
			for _, v := range []string{"GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CI"} {
				env.Setenv(v, "")
			}
			// Nix here has no binary cache to reach, and flakes are still
			// "experimental" on older versions.
			env.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
			// How to reach the container runtimes.
			for _, v := range []string{"CONTAINERS_CONF", "DOCKER_HOST", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"} {
				if val, ok := os.LookupEnv(v); ok {
					env.Setenv(v, val)
				}
			}
			// Scripts that write flakes refer to the library in this tree.
			env.Setenv("NIXFLOW_NIXLIB", nixlibDir)
			return os.MkdirAll(filepath.Join(env.WorkDir, ".home"), 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile":  cmdWaitfile,
			"dead":      cmdDead,
			"ociimage":  cmdOCIImage,
			"ocigone":   cmdOCIGone,
			"subst":     cmdSubst,
			"emptydir":  cmdEmptydir,
			"tmpfs":     cmdTmpfs,
			"xmlvalid":  cmdXMLValid,
			"immutable": cmdImmutable,
			"mainexit":  cmdMainExit,
			"locale":    cmdLocale,
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "script":
				// True on the script engine (TestScriptCompiled): guards the
				// lines of a script that check nixflow run's own features.
				return false, nil
			case "setsid":
				_, err := exec.LookPath("setsid")
				return err == nil, nil
			case "root":
				return os.Geteuid() == 0, nil
			case "immutable":
				return immutableWorks(), nil
			case "sops":
				return tool("sops", "sops", "age-keygen")
			case "locales":
				// localedef, and the sources of the locales the scripts build.
				ok, err := tool("locales", "localedef")
				if ok {
					if _, serr := os.Stat("/usr/share/i18n/locales/tr_TR"); serr != nil {
						if testenv.Required("locales") {
							return false, fmt.Errorf("locales is required (NIXFLOW_TEST_REQUIRE) but has no source for tr_TR: %v", serr)
						}
						return false, nil
					}
				}
				return ok, err
			case "nix":
				return tool("nix", "nix", "nix-instantiate", "nix-store")
			case "docker", "podman":
				return runtimeAnswers(cond)
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	}
}

// cmdXMLValid checks that every named file is well-formed XML whose
// text holds only characters XML allows, as a CI system reading a JUnit
// report requires.
func cmdXMLValid(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: xmlvalid FILE...")
	}
	for _, a := range args {
		f, err := os.Open(ts.MkAbs(a))
		ts.Check(err)
		d := xml.NewDecoder(f)
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				ts.Fatalf("%s: %v", a, err)
			}
		}
		f.Close()
	}
}

// cmdWaitfile waits (at most 30 s) until every named file exists and is
// not empty: how a script waits for a step to reach a point before it
// interrupts the run.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: waitfile FILE...")
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range args {
		p := ts.MkAbs(a)
		for {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitfile: %s did not appear within 30s", a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cmdMainExit builds, at PATH, a program whose main thread ends while it
// lives on in its other threads (executortest.BuildMainExit).
func cmdMainExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mainexit PATH")
	}
	ts.Check(executortest.BuildMainExit(ts.MkAbs(args[0])))
}

// cmdDead checks that every process whose pid is in the named files (one
// per line) is gone: not running, or a zombie waiting for init. It waits up
// to 5 s, since the kernel needs a moment to deliver a SIGKILL.
func cmdDead(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: dead PIDFILE...")
	}
	for _, a := range args {
		data, err := os.ReadFile(ts.MkAbs(a))
		ts.Check(err)
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			ts.Check(err)
			alive := true
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if alive = processAlive(pid); !alive || neg {
					break
				}
			}
			if alive != neg {
				state := "alive"
				if !alive {
					state = "dead"
				}
				ts.Fatalf("process %d (from %s) is %s", pid, a, state)
			}
			if alive {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// cmdOCIGone checks that no container of RUNTIME (docker, podman) has
// the label LABEL=VALUE, waiting up to 30 s for them to go (the watchdog
// of a killed nixflow removes them a moment after the kill). It removes
// those left when it fails.
func cmdOCIGone(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ocigone RUNTIME LABEL=VALUE")
	}
	var left string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command(args[0], "ps", "--all", "--quiet", "--filter", "label="+args[1]).CombinedOutput()
		ts.Check(err)
		if left = strings.TrimSpace(string(out)); left == "" {
			return
		}
	}
	exec.Command(args[0], append([]string{"rm", "--force"}, strings.Fields(left)...)...).Run()
	ts.Fatalf("%s containers labelled %s left 30 s on: %s", args[0], args[1], left)
}

// cmdOCIImage builds (once per test binary) the test image of a
// container runtime and puts its name in $DOCKER_IMAGE or $PODMAN_IMAGE.
func cmdOCIImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || (args[0] != "docker" && args[0] != "podman") {
		ts.Fatalf("usage: ociimage docker|podman")
	}
	ref, err := ocitest.Image(args[0])
	ts.Check(err)
	ts.Setenv(strings.ToUpper(args[0])+"_IMAGE", ref)
}

// substVar is what subst replaces.
var substVar = regexp.MustCompile(`\$\{[A-Z_][A-Z0-9_]*\}`)

// cmdSubst replaces ${VAR} in the named files with the script's variable
// VAR when it is set, in place: how a workflow names a host path or an
// image.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: subst FILE...")
	}
	for _, a := range args {
		p := ts.MkAbs(a)
		data, err := os.ReadFile(p)
		ts.Check(err)
		out := substVar.ReplaceAllStringFunc(string(data), func(m string) string {
			if v := ts.Getenv(m[2 : len(m)-1]); v != "" {
				return v
			}
			return m
		})
		ts.Check(os.WriteFile(p, []byte(out), 0o644))
	}
}

// runtimeAnswers reports whether a container runtime is installed and
// answers; listed in NIXFLOW_TEST_REQUIRE, it must.
func runtimeAnswers(name string) (bool, error) {
	ok, err := tool(name, name)
	if !ok || err != nil {
		return ok, err
	}
	if out, err := exec.Command(name, "info").CombinedOutput(); err != nil {
		if testenv.Required(name) {
			return false, fmt.Errorf("%s is required (NIXFLOW_TEST_REQUIRE) but does not answer: %v: %s", name, err, out)
		}
		return false, nil
	}
	return true, nil
}

// cmdEmptydir waits (at most 10 s) until every named directory is empty,
// and fails listing what is left: how a script checks that what a run put
// on an ssh "host" is removed, also when the removal happens there after
// nixflow is gone.
func cmdEmptydir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: emptydir DIR...")
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range args {
		for {
			entries, err := os.ReadDir(ts.MkAbs(a))
			ts.Check(err)
			if len(entries) == 0 {
				break
			}
			if time.Now().After(deadline) {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				ts.Fatalf("emptydir: %s still holds %s", a, strings.Join(names, ", "))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// tool reports whether the binaries of an outside tool are on PATH. A tool
// listed in NIXFLOW_TEST_REQUIRE must be there: its absence is an error,
// so that a script gated on it fails instead of skipping.
func tool(name string, binaries ...string) (bool, error) {
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			if testenv.Required(name) {
				return false, fmt.Errorf("%s is required (NIXFLOW_TEST_REQUIRE) but %s is not on PATH", name, b)
			}
			return false, nil
		}
	}
	return true, nil
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
