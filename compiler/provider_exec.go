package compiler

import "strings"

// execProvider decodes an exec provider: a program nixflow runs at run
// time, which prints `export KEY=VALUE` lines in shell quoting (the
// provider convention of nixactions, where a provider is a derivation).
func (d *decoder) execProvider(pr *Provider, path, drv *node, p jsonPath) {
	if path != nil {
		if s, ok := d.nonEmpty(path, p.field("path")); ok {
			if !strings.HasPrefix(s, "/") {
				d.at(path, p.field("path"), "expected an absolute path, got %q", s)
			}
			pr.Path = s
		}
	}
	d.providerDrv(pr, drv, p)
}

// providerDrv decodes the drv of an exec or file provider: the derivation
// that builds its path (a store path) when it is missing.
func (d *decoder) providerDrv(pr *Provider, drv *node, p jsonPath) {
	if drv != nil && drv.kind != kindNull {
		if s, ok := d.str(drv, p.field("drv")); ok {
			if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, ".drv") {
				d.at(drv, p.field("drv"), "expected an absolute .drv path, got %q", s)
			}
			pr.Drv = s
		}
	}
}
