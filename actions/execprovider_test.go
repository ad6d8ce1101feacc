package actions

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseExports(t *testing.T) {
	out := strings.Join([]string{
		"loading secrets from vault...",
		`export PLAIN=value`,
		`export SPACED=x\ y\ z`,
		`export SINGLE='it is "quoted"'`,
		`export DOUBLE="a b"`,
		`export NEWLINE=$'line 1\nline 2'`,
		`export EMPTY=`,
		`export A=1 B=2`,
		"  export\tINDENTED=yes",
		`export GLOB=*`,
		`export TILDE=~/x`,
		`export QEMPTY=''`,
		"",
	}, "\n")
	got, err := parseExports([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PLAIN": "value", "SPACED": "x y z", "SINGLE": `it is "quoted"`, "DOUBLE": "a b",
		"NEWLINE": "line 1\nline 2", "EMPTY": "", "A": "1", "B": "2", "INDENTED": "yes",
		"GLOB": "*", "TILDE": "~/x", "QEMPTY": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseExports (-want +got):\n%s", diff)
	}

	for _, bad := range []string{
		`export TOKEN=$(cat /etc/shadow)`,
		`export TOKEN="$HOME/s3cr3t"`,
		"export TOKEN=`id`",
		`export TOKEN=s3cr3t; rm -rf /`,
		`export TOKEN=s3cr3t > /tmp/leak`,
		`export TOKEN='s3cr3t`,
		`export -n TOKEN`,
	} {
		_, err := parseExports([]byte("ok\n" + bad + "\n"))
		if err == nil {
			t.Errorf("parseExports(%q) succeeded", bad)
			continue
		}
		if !strings.HasPrefix(err.Error(), "line 2: ") {
			t.Errorf("parseExports(%q): %v, want an error naming line 2", bad, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("parseExports(%q): error %q quotes the value", bad, err)
		}
	}
}
