// Package nixlib embeds the nixflow Nix library (the .nix files of this
// directory), so that the nixflow binary can evaluate a user's ci.nix with
// the library passed in, whatever version of it the user has, if any.
package nixlib

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed *.nix
var files embed.FS

// Hash identifies this version of the library by its contents.
func Hash() string {
	h := sha256.New()
	names, _ := fs.Glob(files, "*.nix")
	sort.Strings(names)
	for _, n := range names {
		data, _ := files.ReadFile(n)
		fmt.Fprintf(h, "%s %d\n", n, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Materialize writes the library to dir/nixlib-<hash>/ (once: an existing
// complete copy is reused) and returns that directory, ready for Nix to
// import.
func Materialize(dir string) (string, error) {
	dst := filepath.Join(dir, "nixlib-"+Hash())
	if _, err := os.Stat(filepath.Join(dst, "default.nix")); err == nil {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(dir, ".nixlib-")
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(dir, ".nixlib-"); err != nil {
			return "", err
		}
	}
	names, _ := fs.Glob(files, "*.nix")
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tmp, n), data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		// Another nixflow won the race: its copy is as good as ours.
		if _, serr := os.Stat(filepath.Join(dst, "default.nix")); serr == nil {
			return dst, nil
		}
		return "", err
	}
	return dst, nil
}
