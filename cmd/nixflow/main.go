// Command nixflow runs CI workflows written in Nix (or given as a JSON job
// graph) on this machine, in containers, over SSH and on EC2.
package main

import (
	"os"

	"github.com/nixflow/nixflow/executors/watchdog"
)

func main() {
	os.Exit(entry(os.Args))
}

// entry runs the program with argv (os.Args): as the watchdog of an
// executor (watchdog.Main), or as the CLI, whose executors start this
// program as their watchdog.
func entry(argv []string) int {
	if len(argv) > 1 && argv[1] == watchdog.Arg {
		return watchdog.Main(argv[2:], os.Stdin)
	}
	watchdog.Enable(argv[0])
	keepInheritedFDs()
	return Main(argv[1:], os.Stdin, os.Stdout, os.Stderr)
}
