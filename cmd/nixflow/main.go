// Command nixflow runs CI workflows written in Nix (or given as a JSON job
// graph) on this machine, in containers, over SSH and on EC2.
package main

import (
	"os"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
