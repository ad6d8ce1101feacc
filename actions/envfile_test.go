package actions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		keys    []string
		values  map[string]string
		wantErr string
	}{
		{name: "empty", in: "", values: map[string]string{}},
		{name: "simple", in: "A=1\nB=two words\n", keys: []string{"A", "B"},
			values: map[string]string{"A": "1", "B": "two words"}},
		{name: "value with equals and quotes kept", in: `A=x=y "q" 'r'` + "\n", keys: []string{"A"},
			values: map[string]string{"A": `x=y "q" 'r'`}},
		{name: "never expanded", in: "A=$(rm -rf /) ${HOME} `id`\n", keys: []string{"A"},
			values: map[string]string{"A": "$(rm -rf /) ${HOME} `id`"}},
		{name: "empty value", in: "A=\n", keys: []string{"A"}, values: map[string]string{"A": ""}},
		{name: "later wins, order kept", in: "A=1\nB=2\nA=3\n", keys: []string{"A", "B"},
			values: map[string]string{"A": "3", "B": "2"}},
		{name: "heredoc", in: "A<<EOF\nline 1\nline 2\nEOF\nB=after\n", keys: []string{"A", "B"},
			values: map[string]string{"A": "line 1\nline 2", "B": "after"}},
		{name: "heredoc empty", in: "A<<END\nEND\n", keys: []string{"A"}, values: map[string]string{"A": ""}},
		{name: "heredoc with equals inside", in: "A<<X\nk=v\nX\n", keys: []string{"A"}, values: map[string]string{"A": "k=v"}},
		{name: "equals before heredoc marker is a plain value", in: "A=b<<c\n", keys: []string{"A"}, values: map[string]string{"A": "b<<c"}},
		{name: "crlf", in: "A=1\r\nB<<E\r\nx\r\nE\r\n", keys: []string{"A", "B"}, values: map[string]string{"A": "1", "B": "x"}},
		{name: "blank lines", in: "\n\nA=1\n\n", keys: []string{"A"}, values: map[string]string{"A": "1"}},
		{name: "no newline at end", in: "A=1", keys: []string{"A"}, values: map[string]string{"A": "1"}},
		{name: "unclosed heredoc", in: "A<<EOF\nx\n", wantErr: `line 1: value of A is not closed by its delimiter line`},
		{name: "not an assignment", in: "A=1\nhello\n", wantErr: "line 2: expected KEY=VALUE or KEY<<DELIMITER"},
		{name: "bad name", in: "1A=x\n", wantErr: `line 1: invalid variable name before =`},
		{name: "empty delimiter", in: "A<<\n", wantErr: `line 1: A<< has an empty delimiter`},
		// A malformed line may be a value: the error never quotes it.
		{name: "value as name", in: "postgres://u:pw@h/db?ssl=1\n", wantErr: `line 1: invalid variable name before =`},
		{name: "value before empty delimiter", in: "s3cr3t-value<<\n", wantErr: `line 1: invalid variable name before <<`},
		{name: "unclosed heredoc hides its delimiter", in: "A<<s3cr3t-value\nx\n", wantErr: `line 1: value of A is not closed by its delimiter line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, values, err := parseEnvFile([]byte(tt.in), 0)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.keys, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.values, values); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputEnvName(t *testing.T) {
	for job, want := range map[string]string{
		"build":       "NEEDS_BUILD_VERSION",
		"my-job.v2":   "NEEDS_MY_JOB_V2_VERSION",
		"test-os-nix": "NEEDS_TEST_OS_NIX_VERSION",
	} {
		if got := outputEnvName(job, "version"); got != want {
			t.Errorf("outputEnvName(%q) = %q, want %q", job, got, want)
		}
	}
}
