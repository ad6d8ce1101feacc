package executors

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// MergeEnv lays a step's declared environment over a base environment
// (both KEY=VALUE lists, later entries of a list winning over earlier
// ones), then puts prepend in front of the resulting PATH. The result has
// one entry per name, in the order names first appear. Backends that build
// the final environment on this machine use it; the others do the same
// merge where the steps run.
func MergeEnv(base, env, prepend []string) []string {
	idx := make(map[string]int, len(base)+len(env)+1)
	out := make([]string, 0, len(base)+len(env)+1)
	add := func(kv string) {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if i, seen := idx[k]; seen {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		add(kv)
	}
	for _, kv := range env {
		add(kv)
	}
	if len(prepend) > 0 {
		old := ""
		if i, ok := idx["PATH"]; ok {
			_, old, _ = strings.Cut(out[i], "=")
		}
		add("PATH=" + JoinPath(prepend, old))
	}
	return out
}

// JoinPath puts dirs in front of the PATH value old (which may be empty).
func JoinPath(dirs []string, old string) string {
	p := strings.Join(dirs, ":")
	switch {
	case p == "":
		return old
	case old == "":
		return p
	}
	return p + ":" + old
}

// MaxArgStrlen is the kernel's limit on one argument or environment
// string of a program it starts (Linux's MAX_ARG_STRLEN: 32 pages of 4
// KiB), the string's final NUL included.
const MaxArgStrlen = 32 * 4096

// LongVariable is an error naming the first variable of env longer than
// the kernel lets a program start with, nil if none is. A backend whose
// step starts where nixflow cannot see the exec fail (in a container, on
// a host) checks first, where the step would get a bare "Argument list
// too long"; the local executor names it once its exec failed so.
func LongVariable(env []string) error {
	for _, kv := range env {
		if len(kv) >= MaxArgStrlen {
			name, _, _ := strings.Cut(kv, "=")
			return fmt.Errorf("variable %s is %d bytes long, more than the %d the kernel allows one variable (pass large values in a file)", name, len(kv)-len(name)-1, MaxArgStrlen-1)
		}
	}
	return nil
}

// StepDir checks cmd before a backend runs it in the workspace directory
// base (as the steps see it): there is a program to run, and cmd.Dir stays
// inside the workspace. It returns the directory to run in.
func StepDir(base string, cmd Command) (string, error) {
	if len(cmd.Argv) == 0 {
		return "", errors.New("run: empty command")
	}
	if cmd.Dir == "" {
		return base, nil
	}
	if !filepath.IsLocal(cmd.Dir) || strings.Contains(cmd.Dir, "\x00") {
		return "", fmt.Errorf("run: working directory %q is not inside the workspace", cmd.Dir)
	}
	return path.Join(base, filepath.ToSlash(cmd.Dir)), nil
}

// ValidName reports whether name can be a variable of a step's
// environment: letters, digits and _, not starting with a digit (what bash
// can export, and what JOB_ENV accepts).
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// bashSpecial are variables to which bash gives a meaning of its own: an
// assignment would not set them (RANDOM, SECONDS: their next values;
// GROUPS: discarded; BASH_ARGV0: the shell's name). Unset first, they are
// plain variables again.
var bashSpecial = map[string]bool{
	"RANDOM": true, "SRANDOM": true, "SECONDS": true, "LINENO": true, "GROUPS": true, "BASH_ARGV0": true,
	"EPOCHSECONDS": true, "EPOCHREALTIME": true, "BASHPID": true, "HISTCMD": true, "DIRSTACK": true,
	"FUNCNAME": true, "BASH_COMMAND": true, "BASH_SUBSHELL": true, "BASH_LINENO": true, "BASH_SOURCE": true,
	"BASH_ARGV": true, "BASH_ARGC": true, "BASH_CMDS": true, "BASH_ALIASES": true, "COMP_WORDBREAKS": true,
}

// bashReadonly are variables no bash script can set.
var bashReadonly = map[string]bool{
	"UID": true, "EUID": true, "PPID": true, "SHELLOPTS": true, "BASHOPTS": true, "BASH_VERSINFO": true,
}

// EnvScript is a step's environment as export lines for bash, for the
// backends that merge it where the step runs (MergeEnv's merge, done by
// the shell): the declared variables over the target's own environment,
// then the PATH additions in front of the declared PATH, or of the one
// where the step runs.
func EnvScript(env, prepend []string) (string, error) {
	var b strings.Builder
	declaredPath, hasPath := "", false
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !ValidName(k) {
			name, _, _ := strings.Cut(kv, "=")
			return "", fmt.Errorf("invalid environment variable name %q", name)
		}
		if k == "PATH" {
			declaredPath, hasPath = v, true
		}
		q, err := syntax.Quote(v, syntax.LangBash)
		if err != nil {
			return "", fmt.Errorf("environment variable %s: %w", k, err)
		}
		switch {
		case bashReadonly[k]:
			// No bash can set it: left out, with a word why, rather
			// than an error in the step's output.
			fmt.Fprintf(&b, "# %s: read-only in bash, not set\n", k)
		case bashSpecial[k]:
			fmt.Fprintf(&b, "unset -v %s; export %s=%s\n", k, k, q)
		default:
			fmt.Fprintf(&b, "export %s=%s\n", k, q)
		}
	}
	if len(prepend) == 0 {
		return b.String(), nil
	}
	if hasPath {
		q, err := syntax.Quote(JoinPath(prepend, declaredPath), syntax.LangBash)
		if err != nil {
			return "", fmt.Errorf("PATH: %w", err)
		}
		fmt.Fprintf(&b, "export PATH=%s\n", q)
		return b.String(), nil
	}
	q, err := syntax.Quote(strings.Join(prepend, ":"), syntax.LangBash)
	if err != nil {
		return "", fmt.Errorf("PATH: %w", err)
	}
	fmt.Fprintf(&b, "export PATH=%s${PATH:+:$PATH}\n", q)
	return b.String(), nil
}
