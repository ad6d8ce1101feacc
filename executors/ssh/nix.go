package ssh

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/nixflow/nixflow/executors"
)

// nixCopy copies the closure of spec.StorePaths to the host with
// nix-copy-closure over the master connection, as the host's nixCopy
// setting says.
func (w *workspace) nixCopy(ctx context.Context, spec executors.JobSpec) error {
	mode := w.h.t.NixCopy
	if mode == "never" || (mode == "auto" && len(spec.StorePaths) == 0) {
		return nil
	}
	if !w.c.hasNix {
		// Not a host down: jobs without deps can still run there.
		return errors.New("nix-store not found on the host, and the steps have Nix deps\nhint: install Nix on the host (the PATH of a non-interactive login must have nix-store), or set nixCopy = \"never\" if the paths are there")
	}
	if len(spec.StorePaths) == 0 {
		return nil
	}
	if _, err := exec.LookPath("nix-copy-closure"); err != nil {
		return errors.New("nix-copy-closure not found here: Nix is needed to copy the steps' deps")
	}
	spec.Logf("copying the closure of %s to %s", executors.Count(len(spec.StorePaths), "store path", "store paths"), w.Where())
	dest := w.h.t.Host
	if w.h.t.User != "" {
		dest = w.h.t.User + "@" + dest
	}
	args := append([]string{"--to", dest}, spec.StorePaths...)
	cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "nix-copy-closure", args...))
	opts := w.h.args(w.c.sock, "ERROR")
	opts = append(opts, "-o", "ControlMaster=no")
	// Nix splits NIX_SSHOPTS at spaces.
	for _, o := range opts {
		if strings.ContainsAny(o, " \t") {
			return fmt.Errorf("ssh option %q has a space: nix-copy-closure cannot pass it on", o)
		}
	}
	cmd.Env = append(clientEnv(), "NIX_SSHOPTS="+strings.Join(opts, " "))
	cmd.Dir = w.c.dir // the socket's path is relative to it
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := strings.TrimSpace(string(out))
	if line := signatureRefusal(msg); line != "" {
		u := userOr(w.h.t.User)
		return fmt.Errorf("nix-copy-closure: %s\nhint: the host's Nix does not let %s add unsigned paths: add %s to trusted-users in the host's nix.conf, or set require-sigs = false there (what --no-check-sigs does for a trusted user), or sign the paths here (nix store sign --key-file KEY) with a key in the host's trusted-public-keys", line, u, u)
	}
	return fmt.Errorf("nix-copy-closure: %w: %s", err, nixErrors(msg))
}

// nixErrors returns the error lines of Nix's output, but the "unexpected
// end-of-file" that follows the remote side's own error; or the last
// line, if none.
func nixErrors(msg string) string {
	var errs []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "error: ") && line != "error: unexpected end-of-file" {
			errs = append(errs, line)
		}
	}
	if len(errs) == 0 {
		return lastLine(msg)
	}
	return strings.Join(errs, "; ")
}

// signatureRefusal returns the line of Nix's output that says the host
// refused a path for want of a signature (Nix 2.8: "lacks a valid
// signature"; later: "lacks a signature by a trusted key"), or "".
func signatureRefusal(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if strings.Contains(line, "lacks a valid signature") || strings.Contains(line, "lacks a signature by a trusted key") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func userOr(u string) string {
	if u == "" {
		return "the remote user"
	}
	return strconv.Quote(u)
}
