package ssh

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixflow/nixflow/executors"
)

// Exit statuses of the copy scripts.
const (
	exitNotExist = 44
	exitEscapes  = 45
	exitInTheWay = 46
	exitMerge    = 47
)

// untarScript extracts a tar stream into $1, keeping modes. Given $2, the
// path in $1 that the stream fills, and $3, its kind, it first looks
// there for what is in the way (executors.InTheWayScript), and refuses
// with what it found: tar would write through a symbolic link out of the
// workspace, or put a directory in a file's place. With $4 = ask, a
// directory that would merge with one already at $2 is not extracted
// but answered with exitMerge, before the stream is read: the paths of
// its tree are to be checked first (treeCheckScript), as tar would
// replace a link or a file where one of its directories goes.
const untarScript = "in_the_way() {\n" + executors.InTheWayScript + "\n}\n" + `mkdir -p -- "$1" && cd -- "$1" || exit
if [ -n "${2-}" ]; then
  why=$(in_the_way "$2" "$3")
  if [ -n "$why" ]; then echo "$why" >&2; exit 46; fi
  if [ "$3" = 1 ] && [ "${4-}" = ask ] && [ -d "$2" ] && [ ! -L "$2" ]; then exit 47; fi
fi
exec tar -x -p --no-same-owner -f - -C .`

// treeCheckScript looks, from the workspace $1, at the places of the
// entries of a tree copied to $3 (executors.TreeListing's, on stdin),
// with executors.TreeInTheWayScript, and prints what it found. The
// listing goes to a file in the job's temporary directory $2 first: bash
// reads a pipe a byte at a time.
const treeCheckScript = "tree_in_the_way() {\n" + executors.TreeInTheWayScript + "\n}\n" + `cd -- "$1" || exit
f=$(mktemp "$2/.nixflow-tree.XXXXXX") || exit
if ! cat >"$f"; then rm -f -- "$f"; exit 1; fi
# In a subshell: the check's exit is its own, and the file goes.
(tree_in_the_way "$3" "$f")
rc=$?
rm -f -- "$f"
exit "$rc"`

// CopyIn copies the host path src into the workspace as dst, as a tar
// stream over the connection.
func (w *workspace) CopyIn(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.copyIn(ctx, src, dst); err != nil {
		return fmt.Errorf("copy %q into workspace %s:%s as %q: %w", src, w.Where(), w.dir, dst, err)
	}
	return nil
}

func (w *workspace) copyIn(ctx context.Context, src, dst string) error {
	if !localPath(filepath.ToSlash(dst)) {
		return errors.New("destination must be a relative path inside the workspace")
	}
	dst = path.Clean(filepath.ToSlash(dst))
	resolved, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return err
	}
	args := []string{w.dir, dst, executors.InTheWayKind(fi.IsDir()), "ask"}
	send := func() error {
		return w.sendTar(ctx, args, func(tw *tar.Writer) error {
			return writeTree(ctx, tw, resolved, fi, dst)
		})
	}
	err = send()
	var se *scriptError
	if errors.As(err, &se) && se.code == exitMerge {
		if err := w.checkTree(ctx, resolved, dst); err != nil {
			return err
		}
		args[3] = "checked"
		err = send()
	}
	if errors.As(err, &se) && se.code == exitInTheWay {
		lines := strings.Split(se.msg, "\n")
		if why := executors.InTheWayReason(dst, fi.IsDir(), lines[len(lines)-1]); why != "" {
			return &executors.InTheWayError{Reason: why}
		}
	}
	return err
}

// checkTree refuses a copy of the directory tree src to dst, a directory
// already in the workspace, that would meet something in its way below
// dst (executors.CheckTree's check, made on the host).
func (w *workspace) checkTree(ctx context.Context, src, dst string) error {
	entries, err := executors.TreeEntries(src)
	if err != nil {
		return err
	}
	var out strings.Builder
	if err := w.c.script(ctx, treeCheckScript, []string{w.dir, w.tempDir, dst}, bytes.NewReader(executors.TreeListing(entries)), &out); err != nil {
		return fmt.Errorf("look for what is in the way: %w", err)
	}
	if why := executors.TreeInTheWayReason(dst, entries, out.String()); why != "" {
		return &executors.InTheWayError{Reason: why}
	}
	if strings.TrimSpace(out.String()) != "" {
		return fmt.Errorf("look for what is in the way: unexpected answer %q", out.String())
	}
	return nil
}

// sendTar streams the archive that fill writes to the host, extracted
// by untarScript with args (the directory, then what it checks).
func (w *workspace) sendTar(ctx context.Context, args []string, fill func(*tar.Writer) error) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := fill(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	err := w.c.script(ctx, untarScript, args, pr, nil)
	pr.CloseWithError(errors.New("remote tar ended"))
	if werr := <-errc; werr != nil && err == nil {
		return werr
	}
	if err != nil && diskFull(err.Error()) {
		return fmt.Errorf("%w\nhint: the host's disk is full (or the user's quota spent): free space under %s", err, w.c.run)
	}
	return err
}

// diskFull reports whether a remote message (tar's, Nix's) says the disk
// is full: in so many words, or as GNU tar's short write ("Wrote only
// 1536 of 10240 bytes") of a write that filled a file system.
func diskFull(msg string) bool {
	return strings.Contains(msg, "No space left") || strings.Contains(msg, "Disk quota exceeded") ||
		strings.Contains(msg, "database or disk is full") || // SQLite's, Nix's database
		(strings.Contains(msg, "Wrote only ") && strings.Contains(msg, " bytes"))
}

// writeTree writes the tree at p (file, directory or link, whose info is
// fi) to tw under the name name.
func writeTree(ctx context.Context, tw *tar.Writer, p string, fi fs.FileInfo, name string) error {
	if !fi.IsDir() {
		return writeEntry(tw, p, fi, name)
	}
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(p, q)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return writeEntry(tw, q, info, path.Join(name, filepath.ToSlash(rel)))
	})
}

// writeEntry writes one file, directory or link. Other types are skipped.
func writeEntry(tw *tar.Writer, p string, fi fs.FileInfo, name string) error {
	hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if fi.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		return tw.WriteHeader(hdr)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return tw.WriteHeader(hdr)
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, fi.Size()))
		if err == nil && n != fi.Size() {
			err = fmt.Errorf("%s changed size while being copied", p)
		}
		return err
	}
	return nil
}

// tarOutScript writes a tar stream of $2 (relative to $1) to standard
// output. A link given as $2 itself, or on the way to it, is followed if
// it stays inside $1; one that leads out of $1, and an absolute one (even
// into $1), are refused (exit 45), as the local executor refuses them.
const tarOutScript = `root=$1 name=$2
cd -- "$root" 2>/dev/null || exit 44
r=$(pwd -P)
out() { echo "$2 is or goes through a symbolic link that is absolute or leads out of the workspace" >&2; exit 45; }
# Every link on the way, and every link a link leads to, must be
# relative: a link's target is walked part by part too.
p='' rest=$name n=0
while [ -n "$rest" ]; do
	c=${rest%%/*}
	case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
	case $c in '' | .) continue ;; esac
	if [ "$c" = .. ]; then
		# p holds no link: .. is its parent, and none is above the
		# workspace (a link that leaves it and comes back is refused, as
		# everywhere).
		[ -n "$p" ] || out "$@"
		case $p in */*) p=${p%/*} ;; *) p= ;; esac
		continue
	fi
	p=${p:+$p/}$c
	if [ -L "$p" ]; then
		n=$((n + 1))
		[ "$n" -le 40 ] || exit 44
		t=$(readlink -- "$p") || exit 44
		case $t in /*) out "$@" ;; esac
		rest=$t${rest:+/$rest}
		case $p in */*) p=${p%/*} ;; *) p= ;; esac
	fi
done
case $name in
*/*)
	# The directories on the way, links followed: still inside?
	[ -d "${name%/*}" ] || exit 44
	cd -- "${name%/*}" || exit 44
	d=$(pwd -P)
	case $d in "$r" | "$r"/*) ;; *) out "$@" ;; esac
	name=${name##*/}
	;;
esac
if [ -L "$name" ]; then
	t=$(readlink -f -- "$name") || exit 44
	[ -e "$t" ] || exit 44
	case $t in
	"$r"/*) cd -- "$r" && name=${t#"$r"/} ;;
	*) out "$@" ;;
	esac
	case $name in
	*/*) cd -- "${name%/*}" && name=${name##*/} ;;
	esac
fi
[ -e "$name" ] || exit 44
echo nixflow-tar
exec tar -c -f - -- "$name"`

// CopyOut copies src from the workspace (or its temporary directory) to
// the host path dst, as a tar stream over the connection.
func (w *workspace) CopyOut(ctx context.Context, src, dst string) error {
	if err := w.begin(); err != nil {
		return err
	}
	defer w.guard.Done()
	if err := w.copyOut(ctx, src, dst); err != nil {
		return fmt.Errorf("copy %q out of workspace %s:%s to %q: %w", src, w.Where(), w.dir, dst, err)
	}
	return nil
}

func (w *workspace) copyOut(ctx context.Context, src, dst string) error {
	root, name, err := w.resolve(src)
	if err != nil {
		return err
	}
	dst, err = filepath.Abs(dst)
	if err != nil {
		return err
	}
	dstDir, dstName := filepath.Dir(dst), filepath.Base(dst)
	if dst == dstDir {
		return errors.New("destination is the file system's root")
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	var created bool
	go func() {
		err := skipChatter(pr)
		if err == nil {
			err = extract(pr, dstDir, dstName, &created)
		}
		// Drain what tar still sends, so that the remote side ends.
		_, _ = io.Copy(io.Discard, pr)
		pr.CloseWithError(err)
		errc <- err
	}()
	err = w.c.script(ctx, tarOutScript, []string{root, name}, nil, pw)
	pw.Close()
	xerr := <-errc
	var se *scriptError
	switch {
	case errors.As(err, &se) && se.code == exitNotExist:
		return fmt.Errorf("%s: %w", src, fs.ErrNotExist)
	case errors.As(err, &se) && se.code == exitEscapes:
		return fmt.Errorf("%s: a symbolic link on its way %w", src, executors.ErrOutside)
	case err != nil:
		return err
	}
	return xerr
}

// skipChatter reads r up to the line "nixflow-tar" that tarOutScript
// writes before the archive: what a login script may print before it
// (a noisy ~/.bashrc) must not be taken for the archive. It reads a byte
// at a time, so as not to read into the archive.
func skipChatter(r io.Reader) error {
	const marker = "nixflow-tar\n"
	var line []byte
	b := make([]byte, 1)
	for n := 0; n < 1<<20; n++ {
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return nil // nothing came: the script failed, and says why
			}
			return err
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			if string(line) == marker {
				return nil
			}
			line = line[:0]
		}
	}
	return errors.New("no archive in the host's answer")
}

// resolve splits a CopyOut source into the remote directory it must stay
// in and a path inside it.
func (w *workspace) resolve(src string) (root, name string, err error) {
	src = filepath.ToSlash(src)
	if !path.IsAbs(src) {
		if !localPath(src) {
			return "", "", errors.New("source must be inside the workspace")
		}
		return w.dir, path.Clean(src), nil
	}
	src = path.Clean(src)
	for _, root := range []string{w.tempDir, w.dir} {
		if src == root {
			return root, ".", nil
		}
		if rel, ok := strings.CutPrefix(src, root+"/"); ok {
			return root, rel, nil
		}
	}
	return "", "", errors.New("source must be inside the workspace or the temporary directory")
}

// extract writes the tar stream r into dir (created if missing) as name:
// the stream's first entry is the top of the tree, renamed name. Paths
// cannot lead out of dir. An existing file at name is replaced, an existing
// directory merged into; the directories it creates get their modes last.
func extract(r io.Reader, dir, name string, created *bool) error {
	tr := tar.NewReader(r)
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	top := ""
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		entry := strings.TrimSuffix(path.Clean(hdr.Name), "/")
		if top == "" {
			top = entry
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if root, err = os.OpenRoot(dir); err != nil {
				return err
			}
			*created = true
		}
		target, ok := inTop(top, entry, name)
		if !ok {
			return fmt.Errorf("unexpected entry %q in the archive", hdr.Name)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		if hdr.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			fi, err := root.Lstat(target)
			switch {
			case err == nil && fi.IsDir():
				continue
			case err == nil:
				if err := root.Remove(target); err != nil {
					return err
				}
			}
			if err := root.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{target, mode})
		case tar.TypeSymlink:
			if err := replace(root, target); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(root, target, tr, mode); err != nil {
				return err
			}
		case tar.TypeLink:
			// A second name of a file tar already sent: a copy of it, as
			// a copy on this machine makes one of each name.
			first, ok := inTop(top, strings.TrimSuffix(path.Clean(hdr.Linkname), "/"), name)
			if !ok {
				return fmt.Errorf("unexpected link %q to %q in the archive", hdr.Name, hdr.Linkname)
			}
			src, err := root.Open(first)
			if err != nil {
				return fmt.Errorf("second name %q of %q: %w", hdr.Name, hdr.Linkname, err)
			}
			err = writeFile(root, target, src, mode)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	for _, d := range slices.Backward(dirs) {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return err
		}
	}
	return nil
}

// inTop maps an archive entry to its path under name, the destination
// of top, the archive's first entry; ok is false for an entry outside it.
func inTop(top, entry, name string) (string, bool) {
	switch {
	case entry == top:
		return name, true
	case top == "." && entry != ".." && !strings.HasPrefix(entry, "../"):
		return path.Join(name, entry), true
	case strings.HasPrefix(entry, top+"/"):
		return path.Join(name, strings.TrimPrefix(entry, top+"/")), true
	}
	return "", false
}

// writeFile writes what r holds as the file target, with mode.
func writeFile(root *os.Root, target string, r io.Reader, mode fs.FileMode) error {
	if err := replace(root, target); err != nil {
		return err
	}
	f, err := root.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return root.Chmod(target, mode)
}

// replace removes a non-directory at name, so that it can be created anew.
func replace(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%q exists and is a directory", name)
	}
	return root.Remove(name)
}
