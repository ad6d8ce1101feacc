// Command nixflow runs CI workflows written in Nix (or given as a JSON job
// graph) on this machine, in containers, over SSH and on EC2.
package main

import (
	"os"

	"github.com/nixflow/nixflow/executors/local"
)

func main() {
	os.Exit(entry(os.Args))
}

// entry runs the program with argv (os.Args): as the watchdog of a local
// executor's steps (local.WatchdogMain), or as the CLI, whose local
// executors start this program as their watchdog.
func entry(argv []string) int {
	if len(argv) > 1 && argv[1] == local.WatchdogArg {
		return local.WatchdogMain(argv[2:], os.Stdin)
	}
	local.EnableWatchdog(argv[0])
	return Main(argv[1:], os.Stdin, os.Stdout, os.Stderr)
}
