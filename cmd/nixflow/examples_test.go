package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/internal/sshdtest"
	"github.com/nixflow/nixflow/internal/testenv"
)

// exampleTest is one run of a workflow of examples/.
type exampleTest struct {
	file   string
	args   []string // extra arguments of `nixflow run`, before the file
	code   int      // the exit status
	want   []string // regexps that must match the output
	reject []string // regexps that must not match it
	// check, when set, makes further checks of the output.
	check func(t *testing.T, out string)
	// tools are the outside tools the example needs besides nix.
	tools []string
	// sshHosts, when set, starts that many sshd "hosts" for the run (on
	// addresses of their own, one port) and names them in SSH_HOSTS.
	sshHosts int
}

// name is the subtest's name: the file, and the extra arguments if any.
func (tt exampleTest) name() string {
	if len(tt.args) == 0 {
		return tt.file
	}
	return tt.file + "/" + strings.Join(tt.args, "_")
}

// The clear values of the secrets of examples/secrets.nix.
var exampleSecrets = func() []string {
	// API_TOKEN, made by the command provider, and the session a step
	// derives from it and masks.
	hash := func(s string, n int) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:n]
	}
	token := "tok-" + hash("nixflow", 10)
	session := "sess-" + hash(token, 16)
	// DB_PASSWORD, from examples/example.env.
	return []string{"correct-horse-battery-staple", token, session}
}()

// pipelineWant is what the README's pipeline shows, in JSON and in Nix
// alike: the two files are one workflow (TestPipelineNixMatchesJSON).
var pipelineWant = []string{
	`(?m)^\[version/describe\] version \S+$`,
	`(?m)^\[lint/titles\] \d+ docs have a title$`,
	`(?m)^\[build/report\] rendered \d+ pages$`,
	`(?m)^\[check/links\] all pages present$`,
	`(?m)^\[package/tar\] site.tar.gz: \d+ entries$`,
	`(?m)^\[notify/summary\] pipeline finished for version \S+$`,
	`(?m)^run \S+ succeeded in `,
}

// exampleTests: every workflow in examples/ must be here at least once.
// Jobs run in parallel and their lines interleave, so the regexps match
// single lines and never the order of lines of different jobs (except
// where check tests an order the semantics guarantee).
var exampleTests = []exampleTest{
	{file: "pipeline.json", code: ExitOK, want: pipelineWant},
	{file: "pipeline.nix", code: ExitOK, want: pipelineWant},
	{file: "minimal.nix", code: ExitOK, want: []string{
		`(?m)^\[hello/greet\] hello from hello$`,
		`(?m)^hello +success +\S+ +1$`,
		`(?m)^run \S+ succeeded in `,
	}},
	{
		file: "parallel.nix",
		// A fixed cap, so that the three jobs of level 0 overlap whatever
		// the number of CPUs.
		args: []string{"--max-parallel", "3"},
		code: ExitOK,
		want: []string{
			`(?m)^\[lint-headers/headers\] \d+ examples have a header$`,
			`(?m)^\[lint-nix/whitespace\] no tabs or trailing whitespace$`,
			`(?m)^\[test/usage\] every example says how to run it$`,
			`(?m)^\[build/tarball\] examples.tar.gz: \d+ entries$`,
			`(?m)^\[docs/count\] \d+ pages in docs/$`,
			`(?m)^run \S+ succeeded in `,
		},
		check: func(t *testing.T, out string) {
			// The jobs that need nothing run at the same time: each
			// starts before any of them has finished (each sleeps 0.3 s).
			level0 := []string{"lint-headers", "lint-nix", "docs"}
			for _, a := range level0 {
				for _, b := range level0 {
					before(t, out, "["+a+"] job started", "["+b+"] job succeeded")
				}
			}
			// A job starts only after every job it needs.
			before(t, out, "[lint-headers] job succeeded", "[test] job started")
			before(t, out, "[lint-nix] job succeeded", "[test] job started")
			before(t, out, "[test] job succeeded", "[build] job started")
		},
	},
	{file: "env-sharing.nix", code: ExitOK, want: []string{
		// JOB_ENV, KEY=VALUE and KEY<<EOF.
		`(?m)^\[build-info/use\] GREETING=hello from set-env$`,
		`(?m)^\[build-info/use\] NOTES: first line$`,
		`(?m)^\[build-info/use\] NOTES: second line$`,
		// JOB_PATH: the tool made by make-tool is on PATH.
		`(?m)^\[build-info/use\] HELLO FROM SET-ENV$`,
		// A step's env and its exports stay in that step.
		`(?m)^\[build-info/step-env\] ONLY_HERE=step value$`,
		`(?m)^\[build-info/use\] ONLY_HERE=unset LOST=unset$`,
		// JOB_OUTPUT, read as NEEDS_BUILD_INFO_<KEY>.
		`(?m)^\[release/read\] version 1\.2\.3$`,
		`(?m)^\[release/read\] changelog: - fixed a bug$`,
		`(?m)^\[release/read\] changelog: - added a feature$`,
		// JOB_ENV values stay in their job.
		`(?m)^\[release/read\] GREETING=unset$`,
		`(?m)^run \S+ succeeded in `,
	}},
	{file: "artifacts.nix", code: ExitOK, want: []string{
		`(?m)^\[build/compile\] built: out out/bin out/bin/app out/cache out/run out/share out/share/doc out/share/doc/VERSION$`,
		// Restored at the original path, mode bits, links and empty
		// directories kept.
		`(?m)^\[test/run\] out/bin/app is executable$`,
		`(?m)^\[test/run\] out/run is a link to bin/app$`,
		`(?m)^\[test/run\] out/cache \(empty\) is there$`,
		`(?m)^\[test/run\] hello from app 0\.3\.0$`,
		// Restored under path: a directory's contents and a file, both
		// in dist/.
		`(?m)^\[package/tar\] dist: VERSION bin cache run share$`,
		`(?m)^\[package/tar\] hello from app 0\.3\.0$`,
		`(?m)^\[package/tar\] app-0\.3\.0\.tar\.gz: \d+ entries$`,
		`(?m)^run \S+ succeeded in `,
	}},
	{file: "retry.nix", code: ExitOK, want: []string{
		// Workflow level, exponential: 10ms, 20ms.
		`(?m)^\[exponential/flaky\] attempt 1/3 failed: failed with exit status 1; retrying in 10ms$`,
		`(?m)^\[exponential/flaky\] attempt 2/3 failed: failed with exit status 1; retrying in 20ms$`,
		`(?m)^\[exponential/flaky\] step started, attempt 3/3$`,
		`(?m)^\[exponential/flaky\] exponential: attempt 3, succeeding$`,
		`(?m)^\[exponential\] job succeeded$`,
		// Job level, linear: 20ms, 40ms.
		`(?m)^\[linear/flaky\] attempt 1/3 failed: failed with exit status 1; retrying in 20ms$`,
		`(?m)^\[linear/flaky\] attempt 2/3 failed: failed with exit status 1; retrying in 40ms$`,
		`(?m)^\[linear/flaky\] step started, attempt 3/3$`,
		`(?m)^\[linear/flaky\] linear: attempt 3, succeeding$`,
		`(?m)^\[linear\] job succeeded$`,
		// Step level, constant, capped by the workflow's maxTime.
		`(?m)^\[constant/flaky\] attempt 1/3 failed: failed with exit status 1; retrying in 100ms$`,
		`(?m)^\[constant/flaky\] attempt 2/3 failed: failed with exit status 1; retrying in 100ms$`,
		`(?m)^\[constant/flaky\] step started, attempt 3/3$`,
		`(?m)^\[constant/flaky\] constant: attempt 3, succeeding$`,
		`(?m)^\[constant\] job succeeded$`,
		// retry = null: one attempt; a step turns it on again.
		`(?m)^\[no-retry/once\] step started$`,
		`(?m)^\[no-retry/once\] step failed \(allowed\): failed with exit status 1$`,
		`(?m)^\[no-retry/flaky\] step started, attempt 3/3$`,
		`(?m)^\[no-retry/flaky\] again: attempt 3, succeeding$`,
		`(?m)^\[no-retry\] job succeeded$`,
		`(?m)^exponential +success +\S+ +3$`,
		`(?m)^linear +success +\S+ +3$`,
		`(?m)^run \S+ succeeded in `,
	}, reject: []string{
		`attempt 4`,
		`no-retry/once\] (step started, )?attempt`,
	}},
	{file: "conditions.nix", code: ExitOK, want: []string{
		// Steps.
		`(?m)^\[checks/optional\] step failed \(allowed\): failed with exit status 3$`,
		`(?m)^\[checks/after-optional\] runs: an allowed failure counts as success$`,
		`(?m)^\[checks/if-main\] runs: the bash condition exited 0$`,
		`(?m)^\[checks/fails\] step failed: failed with exit status 1$`,
		`(?m)^\[checks/on-failure\] runs: failure\(\) after a failed step$`,
		`(?m)^\[checks/on-always\] runs: always\(\)$`,
		`(?m)^\[checks/failure-and-bash\] runs: failure\(\) && bash$`,
		`(?m)^\[checks\] job failed \(allowed\): step "fails" failed with exit status 1$`,
		// Jobs.
		`(?m)^\[after-checks/s\] runs: checks failed \(allowed\), which counts as success$`,
		`(?m)^\[on-failure\] job skipped: no job it needs failed$`,
		`(?m)^\[on-always/s\] runs: always\(\)$`,
		`(?m)^\[on-cancel\] job skipped: the run was not cancelled$`,
		`(?m)^\[on-main/s\] runs: BRANCH is main$`,
		`(?m)^\[on-release\] job skipped: condition "\[ \\"\$BRANCH\\" = release \]" exited with status 1$`,
		`(?m)^\[after-release\] job skipped: needed job "on-release" was skipped$`,
		`(?m)^checks +failed \(allowed\) `,
		`(?m)^run \S+ succeeded in \S+: 1 allowed failure, 4 skipped$`,
	}, reject: []string{
		// Every step or job that must not run prints "never printed".
		`never printed`,
	}},
	{file: "secrets.nix", code: ExitOK, want: []string{
		`(?m)^\[deploy/show\] DEPLOY_ENV=staging$`,
		`(?m)^warning: secret DB_USER is shorter than 4 characters and is not masked$`,
		`(?m)^\[deploy/show\] DB_USER=app$`,
		`(?m)^\[deploy/show\] DB_PASSWORD=\*\*\*$`,
		`(?m)^\[deploy/show\] API_TOKEN=\*\*\*$`,
		`(?m)^\[deploy/show\] connecting to postgres://app:\*\*\*@db\.example$`,
		`(?m)^\[deploy/mask-own\] ::add-mask::\*\*\*$`,
		`(?m)^\[deploy/mask-own\] session=\*\*\*$`,
		`(?m)^run \S+ succeeded in `,
	}, reject: quoteAll(exampleSecrets)},
	{file: "matrix.nix", code: ExitOK, want: []string{
		// Two keys, one combination excluded, one included into an
		// existing combination, one added.
		`(?m)^\[test-go-1\.25-os-linux/test\] testing with go 1\.25 on linux$`,
		`(?m)^\[test-go-1\.26-os-darwin/test\] testing with go 1\.26 on darwin$`,
		`(?m)^\[test-go-1\.26-os-linux-race-true/test\] testing with go 1\.26 on linux with -race$`,
		`(?m)^\[test-experimental-true-go-1\.27rc1-os-linux/test\] testing with go 1\.27rc1 on linux$`,
		`(?m)^\[report/summary\] 4 matrix jobs done: test-experimental-true-go-1\.27rc1-os-linux test-go-1\.25-os-linux test-go-1\.26-os-darwin test-go-1\.26-os-linux-race-true$`,
		`(?m)^run \S+ succeeded in `,
	}, reject: []string{
		`test-go-1\.25-os-darwin`,
		`(?m)^\[test-go-1\.26-os-linux\]`,
	}},
	{file: "complete.nix", code: ExitOK, want: []string{
		`(?m)^\[lint-format/nix\] \d+ nix files without trailing whitespace$`,
		`(?m)^\[lint-docs/titles\] \d+ docs have a title$`,
		`(?m)^\[test-shell-bash-suite-unit/run\] unit suite passed under bash$`,
		`(?m)^\[test-shell-sh-suite-unit/run\] unit suite passed under sh$`,
		`(?m)^\[test-shell-bash-suite-integration/run\] integration suite passed under bash$`,
		`(?m)^\[build/bundle\] bundle\.tar\.gz: 3 entries$`,
		`(?m)^\[deploy\] job skipped: condition "\[ \\"\$DEPLOY\\" = yes \]" exited with status 1$`,
		`(?m)^\[notify/message\] not deployed \(DEPLOY=no\)$`,
		`(?m)^\[cleanup/tidy\] cleaned up$`,
		`(?m)^run \S+ succeeded in \S+: 1 skipped$`,
	}, reject: []string{
		`test-shell-sh-suite-integration`,
		`deploy/release`,
	}},
	{file: "remote.nix", sshHosts: 2, code: ExitOK, want: []string{
		`(?m)^\[build-a/make\] part a built on 127\.0\.0\.\d+$`,
		`(?m)^\[build-b/make\] part b built on 127\.0\.0\.\d+$`,
		// The tool came with nix-copy-closure.
		`(?m)^\[check\] copying the closure of 1 store path to \S+$`,
		`(?m)^\[check/tool\] Hello, world!$`,
		`(?m)^\[check/combine\] part a from 127\.0\.0\.\d+$`,
		`(?m)^\[check/combine\] part b from 127\.0\.0\.\d+$`,
		`(?m)^\[report/show\] here: 2 parts$`,
		`(?m)^report +success +\S+ +1 +local$`,
		`(?m)^run \S+ succeeded in `,
	}, check: func(t *testing.T, out string) {
		// The two builds ran on different hosts of the pool.
		m := regexp.MustCompile(`(?m)^\[build-[ab]/make\] part [ab] built on (\S+)$`).FindAllStringSubmatch(out, -1)
		if len(m) != 2 || m[0][1] == m[1][1] {
			t.Errorf("the builds did not run on two hosts: %q", m)
		}
	}},
	{file: "complete.nix", args: []string{"--env", "DEPLOY=yes"}, code: ExitOK, want: []string{
		`(?m)^\[build/bundle\] bundle\.tar\.gz: 3 entries$`,
		`(?m)^\[deploy/release\] app is running$`,
		`(?m)^\[deploy/release\] deployed version 1\.0\.0$`,
		`(?m)^\[deploy\] job succeeded$`,
		`(?m)^\[notify/message\] deployed to https://staging\.example/\S+$`,
		`(?m)^\[cleanup/tidy\] cleaned up$`,
		`(?m)^run \S+ succeeded in \S+$`,
	}, reject: []string{
		`skipped`,
	}},
	{file: "containers.nix", tools: []string{"docker", "podman"}, code: ExitOK, want: []string{
		`(?m)^\[build/shout\] in /workspace, from hello from \S+$`,
		`(?m)^\[package/tar\] packed 2 entries$`,
		`(?m)^\[check/unpack\] HELLO FROM \S+$`,
		`(?m)^build +success +\S+ +1 +docker container [0-9a-f]{12}$`,
		`(?m)^package +success +\S+ +1 +podman container [0-9a-f]{12}$`,
		`(?m)^run \S+ succeeded in `,
	}},
}

// sshHosts starts n sshd on one port and addresses of their own, with
// one key, and sets the SSH_* variables examples/remote.nix reads.
func sshHosts(t *testing.T, n int) {
	t.Helper()
	ok, why := sshdtest.Available()
	testenv.Need(t, "sshd", ok, why)
	var hosts []string
	var first *sshdtest.Server
	for len(hosts) < n {
		dir := t.TempDir()
		port, addr := 0, ""
		if first != nil {
			port = first.Port
			for _, f := range []string{"id", "id.pub"} {
				b, err := os.ReadFile(filepath.Join(first.Dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		o := sshdtest.Options{Addr: addr, Port: port}
		if len(hosts) == n-1 {
			// The last host (where remote.nix's tool goes) has a Nix store
			// of its own, empty: the tool gets there by nix-copy-closure
			// alone.
			if ok, _ := sshdtest.NamespacesAvailable(); ok {
				nix, err := sshdtest.NixHost(t.TempDir(), false)
				if err != nil {
					t.Fatal(err)
				}
				o.Mounts = nix.Mounts
			}
		}
		s, err := sshdtest.StartWith(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		if slices.Contains(hosts, s.Addr) {
			continue
		}
		if first == nil {
			first = s
		}
		hosts = append(hosts, s.Addr)
	}
	t.Setenv("SSH_HOSTS", strings.Join(hosts, " "))
	t.Setenv("SSH_PORT", strconv.Itoa(first.Port))
	t.Setenv("SSH_USER", first.User)
	t.Setenv("SSH_KEY", first.Key)
	t.Setenv("SSH_OPTIONS", strings.Join(first.Options(), " "))
}

func quoteAll(ss []string) []string {
	var res []string
	for _, s := range ss {
		res = append(res, regexp.QuoteMeta(s))
	}
	return res
}

// before fails t unless the first line starting with a comes before the
// first line starting with b in out.
func before(t *testing.T, out, a, b string) {
	t.Helper()
	ia, ib := -1, -1
	for i, l := range strings.Split(out, "\n") {
		if ia < 0 && strings.HasPrefix(l, a) {
			ia = i
		}
		if ib < 0 && strings.HasPrefix(l, b) {
			ib = i
		}
	}
	if ia < 0 || ib < 0 || ia > ib {
		t.Errorf("want a line %q... (line %d) before a line %q... (line %d); output:\n%s", a, ia+1, b, ib+1, out)
	}
}

// exampleEnv sets up the environment of a run of an example: its own state
// and cache directories, Nix offline without substituters, and none of
// the variables the examples read from nixflow's environment.
// repoRoot is the repository's top directory, where examples run from.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func exampleEnv(t *testing.T, root string) {
	t.Helper()
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	for _, name := range []string{
		"SITE_TITLE", "DEPLOY", "BRANCH", "DEPLOY_ENV", "DB_USER", "DB_PASSWORD", "API_TOKEN",
		"GREETING", "NOTES", "ONLY_HERE", "LOST",
		"SSH_HOSTS", "SSH_USER", "SSH_PORT", "SSH_KEY", "SSH_OPTIONS",
	} {
		t.Setenv(name, "") // restored at the end of the test
		os.Unsetenv(name)
	}
	t.Chdir(root)
}

// TestExamples runs every workflow in examples/ end to end, as a user
// would from the repository root, and checks its outcome.
func TestExamples(t *testing.T) {
	root := repoRoot(t)
	known := map[string]bool{}
	for _, tt := range exampleTests {
		known[tt.file] = true
	}
	var files []string
	for _, pattern := range []string{"*.json", "*.nix"} {
		m, err := filepath.Glob(filepath.Join(root, "examples", pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, f := range files {
		if !known[filepath.Base(f)] {
			t.Errorf("examples/%s is not in exampleTests: add it", filepath.Base(f))
		}
		delete(known, filepath.Base(f))
	}
	for f := range known {
		t.Errorf("exampleTests has %s, which is not in examples/", f)
	}

	for _, tt := range exampleTests {
		t.Run(tt.name(), func(t *testing.T) {
			if strings.HasSuffix(tt.file, ".nix") {
				testenv.NeedCommand(t, "nix", "nix-instantiate")
			}
			for _, tool := range tt.tools {
				testenv.NeedCommand(t, tool, tool)
			}
			exampleEnv(t, root)
			if tt.sshHosts > 0 {
				sshHosts(t, tt.sshHosts)
			}
			args := append([]string{"run", "--log-format", "simple"}, tt.args...)
			args = append(args, "examples/"+tt.file)
			var out bytes.Buffer
			code := Main(args, bytes.NewReader(nil), &out, &out)
			if code != tt.code {
				t.Fatalf("exit status %d, want %d; output:\n%s", code, tt.code, out.String())
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).Match(out.Bytes()) {
					t.Errorf("output does not match %s:\n%s", re, out.String())
				}
			}
			for _, re := range tt.reject {
				if m := regexp.MustCompile(re).Find(out.Bytes()); m != nil {
					t.Errorf("output has %q (matching %s):\n%s", m, re, out.String())
				}
			}
			if tt.check != nil {
				tt.check(t, out.String())
			}
			for _, p := range []string{"site", "examples.tar.gz"} {
				if _, err := os.Stat(filepath.Join(root, p)); err == nil {
					t.Errorf("the example wrote %s into the repository instead of its workspace", p)
				}
			}
		})
	}
}

// TestExampleSecretsNotStored checks that the secrets of
// examples/secrets.nix are written in clear nowhere in the run directory.
func TestExampleSecretsNotStored(t *testing.T) {
	testenv.NeedCommand(t, "nix", "nix-instantiate")
	root := repoRoot(t)
	exampleEnv(t, root)
	var out bytes.Buffer
	for _, args := range [][]string{
		{"run", "--log-format", "json", "examples/secrets.nix"},
		{"logs", "last"},
	} {
		if code := Main(args, bytes.NewReader(nil), &out, &out); code != ExitOK {
			t.Fatalf("nixflow %s: exit status %d; output:\n%s", strings.Join(args, " "), code, out.String())
		}
	}
	for _, s := range exampleSecrets {
		if strings.Contains(out.String(), s) {
			t.Errorf("the output has the secret %q:\n%s", s, out.String())
		}
	}
	state := os.Getenv("XDG_STATE_HOME")
	files := 0
	err := filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range exampleSecrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s has the secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Errorf("no file in the state directory %s: where did the run go?", state)
	}
}

// TestPipelineNixMatchesJSON checks that examples/pipeline.nix is the same
// workflow as examples/pipeline.json: their compiled, normalised plans are
// identical.
func TestPipelineNixMatchesJSON(t *testing.T) {
	testenv.NeedCommand(t, "nix", "nix-instantiate")
	root := repoRoot(t)
	exampleEnv(t, root)
	plan := func(file string) []byte {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := Main([]string{"plan", "--format", "json", file}, bytes.NewReader(nil), &out, &errOut); code != ExitOK {
			t.Fatalf("nixflow plan %s: exit status %d:\n%s", file, code, errOut.String())
		}
		if !json.Valid(out.Bytes()) {
			t.Fatalf("nixflow plan %s: not JSON:\n%s", file, out.String())
		}
		return out.Bytes()
	}
	fromNix, fromJSON := plan("examples/pipeline.nix"), plan("examples/pipeline.json")
	if !bytes.Equal(fromNix, fromJSON) {
		t.Errorf("the plans differ\npipeline.nix:\n%s\npipeline.json:\n%s", fromNix, fromJSON)
	}
}
