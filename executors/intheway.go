package executors

import (
	"fmt"
	"path"
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
	idx, what, ok := strings.Cut(strings.TrimSpace(out), " ")
	i, err := strconv.Atoi(idx)
	parts := strings.Split(dst, "/")
	if !ok || err != nil || i < 0 || i >= len(parts) {
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
