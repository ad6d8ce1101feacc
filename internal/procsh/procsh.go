// Package procsh holds the bash functions that the shell scripts nixflow
// runs (the SSH executor's step runner, the compiled script) share to
// look at processes in /proc.
package procsh

import _ "embed"

// Bash defines nf_settle, nf_env_end, nf_gone and nf_stat (see
// procsh.bash): bash 4.4 or later, builtins only. A script defines them
// before it calls them.
//
//go:embed procsh.bash
var Bash string
