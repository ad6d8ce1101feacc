package executors

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// InTheWayError is a CopyIn refused because something in the workspace
// stands where the copy goes (a file where a directory goes, a symbolic
// link out of the workspace): the workflow's doing, not the executor's.
// Reason says what, as InTheWayReason words it.
type InTheWayError struct {
	Reason string
}

func (e *InTheWayError) Error() string { return e.Reason }

// InTheWayScript is a bash script that looks, from the workspace
// directory, along the relative path $1 for what a copy to it cannot
// pass: where a directory goes, a file, or a symbolic link that leads to
// no directory or out of the workspace; at $1 itself, when the copy is a
// directory ($2 = 1), a file or any symbolic link, when it is a file
// ($2 = 0), a directory. It prints the index of that path element and
// what it is, nothing when nothing is in the way; InTheWayReason reads
// that. compiler/script/runtime.bash's nf_in_the_way is the same check.
const InTheWayScript = `IFS=/ read -ra parts <<<"$1"
p='' n=${#parts[@]} top=$(pwd -P)
for ((i = 0; i < n; i++)); do
  p=${p:+$p/}${parts[i]}
  if [[ -L $p ]] && ((i == n - 1 && $2)); then echo "$i a symbolic link"; exit
  elif [[ -L $p ]] && ((i < n - 1)); then
    if [[ ! -d $p ]]; then echo "$i a symbolic link"; exit
    fi
    r=$(cd -P -- "$p" && pwd)
    if [[ $r != "$top" && $r != "$top"/* ]]; then echo "$i a symbolic link out of the workspace"; exit
    fi
  elif [[ -e $p && ! -d $p ]] && ((i < n - 1 || $2)); then echo "$i a file"; exit
  elif [[ -d $p && ! -L $p ]] && ((i == n - 1 && !$2)); then echo "$i a directory"; exit
  fi
done`

// InTheWayKind is InTheWayScript's $2 for a copy of a directory (dir)
// or of a file.
func InTheWayKind(dir bool) string {
	if dir {
		return "1"
	}
	return "0"
}

// InTheWayReason words what InTheWayScript printed for a copy to dst (a
// clean relative path) of a directory (dir) or a file: `"dist" in the
// workspace is a file, where a directory goes`. It is "" when the script
// found nothing in the way, or printed something else.
func InTheWayReason(dst string, dir bool, out string) string {
	parts := strings.Split(dst, "/")
	i, what, ok := found(out, len(parts))
	if !ok {
		return ""
	}
	place := "a directory goes"
	switch {
	case i == len(parts)-1 && dir:
		place = "the artifact's directory goes"
	case i == len(parts)-1:
		place = "the artifact's file goes"
	}
	return fmt.Sprintf("%q in the workspace is %s, where %s", path.Join(parts[:i+1]...), what, place)
}

// A copy of a directory into a directory that is already there merges the
// two, and must not meet, below its top, what it cannot pass either: a
// symbolic link or a file where one of its directories goes (the link
// would be written through, or replaced, depending on the backend), a
// directory where one of its files goes. Backends check every path of
// the tree before they write any (CheckTree here, TreeInTheWayScript on
// a remote host).

// TreeEntry is a path below the top of a tree that a copy brings
// (slash-separated, relative to the top), and whether it is a directory.
type TreeEntry struct {
	Path string
	Dir  bool
}

// TreeEntries lists the directory tree at root in the byte order of
// the paths (each directory before what it holds; of several paths in
// the way, every backend names the same first); symbolic links below
// root are entries, not followed.
func TreeEntries(root string) ([]TreeEntry, error) {
	var entries []TreeEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		entries = append(entries, TreeEntry{Path: filepath.ToSlash(rel), Dir: d.IsDir()})
		return nil
	})
	slices.SortFunc(entries, func(a, b TreeEntry) int { return strings.Compare(a.Path, b.Path) })
	return entries, err
}

// TreeListing is entries as TreeInTheWayScript reads them: "d" or "f",
// the path, and a NUL byte, for each.
func TreeListing(entries []TreeEntry) []byte {
	var b []byte
	for _, e := range entries {
		if e.Dir {
			b = append(b, 'd')
		} else {
			b = append(b, 'f')
		}
		b = append(b, e.Path...)
		b = append(b, 0)
	}
	return b
}

// CheckTree looks, with lstat (an os.Root's, say), at the place of each
// entry of a tree copied to the directory dst, and refuses the first
// that something stands in (TreeInTheWayScript's check). Below a
// directory of the tree that is not there yet, nothing can be.
func CheckTree(lstat func(string) (fs.FileInfo, error), dst string, entries []TreeEntry) error {
	absent := ""
	for _, e := range entries {
		if absent != "" && strings.HasPrefix(e.Path, absent+"/") {
			continue
		}
		absent = ""
		fi, err := lstat(path.Join(dst, e.Path))
		if errors.Is(err, fs.ErrNotExist) {
			if e.Dir {
				absent = e.Path
			}
			continue
		}
		if err != nil {
			return err
		}
		what := ""
		switch {
		case e.Dir && fi.Mode()&fs.ModeSymlink != 0:
			what = "a symbolic link"
		case e.Dir && !fi.IsDir():
			what = "a file"
		case !e.Dir && fi.IsDir():
			what = "a directory"
		}
		if what != "" {
			return &InTheWayError{Reason: TreeReason(dst, e, what)}
		}
	}
	return nil
}

// TreeInTheWayScript is a bash script that looks, from the workspace
// directory, at the place of each entry of a tree copied to the directory
// $1 (TreeListing's entries, in the file $2) for what CheckTree refuses.
// It prints the index of the first such entry and what stands there,
// nothing when nothing does; TreeInTheWayReason reads that.
// compiler/script/runtime.bash's nf_tree_in_the_way is the same check.
const TreeInTheWayScript = `mapfile -d '' -t l <"$2" || exit
absent=''
for ((i = 0; i < ${#l[@]}; i++)); do
  p=$1/${l[i]:1}
  if [[ -n $absent ]]; then
    [[ $p == "$absent"/* ]] && continue
    absent=''
  fi
  if [[ ${l[i]:0:1} == d ]]; then
    if [[ -L $p ]]; then echo "$i a symbolic link"; exit
    elif [[ -d $p ]]; then continue
    elif [[ -e $p ]]; then echo "$i a file"; exit
    fi
    absent=$p
  elif [[ -d $p && ! -L $p ]]; then echo "$i a directory"; exit
  fi
done`

// TreeInTheWayReason words what TreeInTheWayScript printed for a copy
// of entries to dst; "" when it found nothing in the way, or printed
// something else.
func TreeInTheWayReason(dst string, entries []TreeEntry, out string) string {
	i, what, ok := found(out, len(entries))
	if !ok {
		return ""
	}
	return TreeReason(dst, entries[i], what)
}

// found reads what InTheWayScript or TreeInTheWayScript printed: an
// index below n, a space and what stands there.
func found(out string, n int) (int, string, bool) {
	idx, what, ok := strings.Cut(strings.TrimSpace(out), " ")
	i, err := strconv.Atoi(idx)
	return i, what, ok && err == nil && i >= 0 && i < n
}

// TreeReason says that what stands where entry e of a tree copied to
// dst goes: `"dist/lib" in the workspace is a symbolic link, where a
// directory of the artifact goes`.
func TreeReason(dst string, e TreeEntry, what string) string {
	place := "a file of the artifact goes"
	if e.Dir {
		place = "a directory of the artifact goes"
	}
	return fmt.Sprintf("%q in the workspace is %s, where %s", path.Join(dst, e.Path), what, place)
}
