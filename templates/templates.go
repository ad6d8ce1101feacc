// Package templates holds the scaffold that `nixflow init` writes and the
// flake's templates.default offers: a ci.nix and a flake.nix to start from.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed default
var files embed.FS

// Default returns the files of the default template, by name.
func Default() fs.FS {
	sub, err := fs.Sub(files, "default")
	if err != nil {
		panic(err) // the directory is embedded: it exists
	}
	return sub
}
