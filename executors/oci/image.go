package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// closureImage returns an image holding the closure of roots, assembling
// and importing it unless one with the same contents exists already.
func (c *cli) closureImage(ctx context.Context, roots, closure []string) (string, error) {
	var bash string
	var bins []string
	for _, r := range roots {
		if fi, err := os.Stat(filepath.Join(r, "bin")); err == nil && fi.IsDir() {
			bins = append(bins, r+"/bin")
		}
		if bash == "" {
			if fi, err := os.Stat(filepath.Join(r, "bin", "bash")); err == nil && !fi.IsDir() {
				bash = r + "/bin/bash"
			}
		}
	}
	if bash == "" {
		return "", fmt.Errorf("no image given and none of the deps has bin/bash (%s); hint: add a package with bash to the steps' deps (nixflow runs every step with bash), or set image", strings.Join(roots, ", "))
	}
	sorted := append([]string(nil), closure...)
	sort.Strings(sorted)
	h := sha256.New()
	fmt.Fprintf(h, "nixflow closure image v1\n%s\n%s\n", strings.Join(roots, "\n"), strings.Join(sorted, "\n"))
	sum := hex.EncodeToString(h.Sum(nil))[:32]
	ref := "nixflow-closure:" + sum
	if c.name == "podman" {
		ref = "localhost/" + ref
	}
	if _, err := c.output(ctx, nil, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		return ref, nil
	} else if ctx.Err() != nil {
		return "", fmt.Errorf("assemble image: %w", ctx.Err())
	}

	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeClosureTar(ctx, pw, sorted, bash))
	}()
	_, err := c.output(ctx, pr, "import",
		"--change", "ENV PATH="+strings.Join(bins, ":"),
		"--change", "LABEL "+LabelClosure+"="+sum,
		"-", ref)
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("assemble image from the deps' closure: %w", err)
	}
	return ref, nil
}

// writeClosureTar writes a root file system holding the store paths, a
// /bin with bash and sh, /tmp and a minimal /etc.
func writeClosureTar(ctx context.Context, w io.Writer, paths []string, bash string) error {
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
	}
	file := func(name, data string) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, data)
		return err
	}
	link := func(name, target string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
	}
	for _, step := range []func() error{
		func() error { return dir("bin", 0o755) },
		func() error { return dir("etc", 0o755) },
		func() error { return dir("tmp", 0o1777) },
		func() error { return dir("root", 0o700) },
		func() error { return dir("nix", 0o755) },
		func() error { return dir("nix/store", 0o755) },
		func() error { return link("bin/bash", bash) },
		func() error { return link("bin/sh", bash) },
		func() error {
			return file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
		},
		func() error { return file("etc/group", "root:x:0:\nnogroup:x:65534:\n") },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if err := addTree(ctx, tw, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addTree adds the tree at the absolute path root, keeping symbolic links.
func addTree(ctx context.Context, tw *tar.Writer, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		hdr.Name = strings.TrimPrefix(p, "/")
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}
