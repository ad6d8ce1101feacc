package compiler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/timing"
)

func TestRetryDelay(t *testing.T) {
	s := func(f float64) timing.Duration { return timing.Duration(f * float64(time.Second)) }
	tests := []struct {
		r    Retry
		want []time.Duration // after attempts 1, 2, 3, ...
	}{
		{Retry{Backoff: BackoffExponential, MinTime: s(1), MaxTime: s(60)},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{Retry{Backoff: BackoffExponential, MinTime: s(10), MaxTime: s(25)},
			[]time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second}},
		{Retry{Backoff: BackoffLinear, MinTime: s(2), MaxTime: s(5)},
			[]time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second}},
		{Retry{Backoff: BackoffConstant, MinTime: s(3), MaxTime: s(60)},
			[]time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{Retry{Backoff: BackoffConstant, MinTime: s(3), MaxTime: s(1)},
			[]time.Duration{time.Second}},
		{Retry{Backoff: BackoffExponential, MinTime: 0, MaxTime: s(60)},
			[]time.Duration{0, 0}},
	}
	for _, tt := range tests {
		var got []time.Duration
		for n := 1; n <= len(tt.want); n++ {
			got = append(got, tt.r.Delay(n))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.r, diff)
		}
	}
	// A huge attempt number must not overflow.
	r := Retry{Backoff: BackoffExponential, MinTime: s(1), MaxTime: s(60)}
	if d := r.Delay(500); d != 60*time.Second {
		t.Errorf("Delay(500) = %s", d)
	}
}

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in      string
		want    Condition
		wantErr string
	}{
		{"success()", Condition{Status: StatusSuccess}, ""},
		{" always() ", Condition{Status: StatusAlways}, ""},
		{"failure()", Condition{Status: StatusFailure}, ""},
		{"cancelled()", Condition{Status: StatusCancelled}, ""},
		{"[ \"$A\" = b ]", Condition{Status: StatusSuccess, Command: "[ \"$A\" = b ]"}, ""},
		{"always() && test -f x", Condition{Status: StatusAlways, Command: "test -f x"}, ""},
		{"failure()&&true", Condition{Status: StatusFailure, Command: "true"}, ""},
		{"a || b | c && 'd e'", Condition{Status: StatusSuccess, Command: "a || b | c && 'd e'"}, ""},
		{"", Condition{}, `empty condition (use "always()" to run unconditionally)`},
		{"alway()", Condition{}, `unknown status function "alway()" (did you mean "always()"?) (known: success(), failure(), always(), cancelled())`},
		{"always() || true", Condition{}, "always() may only be followed by `&& COMMAND`, got \"|| true\""},
		{"always() &&", Condition{}, "always() may only be followed by `&& COMMAND`, got \"&&\""},
		{"!cancelled()", Condition{Status: StatusExpr, Expr: "!cancelled()"}, ""},
		{"failure() || cancelled()", Condition{Status: StatusExpr, Expr: "failure() || cancelled()"}, ""},
		{"success() && !cancelled()", Condition{Status: StatusExpr, Expr: "success() && !cancelled()"}, ""},
		{"( failure()||cancelled() ) && test -f x", Condition{Status: StatusExpr, Expr: "failure() || cancelled()", Command: "test -f x"}, ""},
		{"!(success() || failure()) && !always()", Condition{Status: StatusExpr, Expr: "!(success() || failure()) && !always()"}, ""},
		{"(always())", Condition{Status: StatusAlways}, ""},
		{"! grep -q x file", Condition{Status: StatusSuccess, Command: "! grep -q x file"}, ""},
		{"(cd sub && make check)", Condition{Status: StatusSuccess, Command: "(cd sub && make check)"}, ""},
		{"failure() || cancelled() && true", Condition{}, "put the status expression in parentheses: (failure() || cancelled()) && true"},
		{"always", Condition{}, `"always" is not a status function call: write "always()" (a bare word would run as a bash command)`},
		{"!success && true", Condition{}, `"success" is not a status function call: write "success()" (a bare word would run as a bash command)`},
		{"${{ always() }}", Condition{}, `${{ ... }} expressions are GitHub Actions syntax, not nixflow's: write the condition itself ("always()")`},
		{"${{ failure() || cancelled() }}", Condition{}, `${{ ... }} expressions are GitHub Actions syntax, not nixflow's: write the condition itself ("failure() || cancelled()")`},
		// Written as a command, github.ref == 'main' would fail and skip.
		{"${{ github.ref == 'main' }}", Condition{}, `${{ ... }} expressions are GitHub Actions syntax, not nixflow's: a condition is a status function (success(), failure(), always(), cancelled()) or a bash command, e.g. [ "$BRANCH" = main ]`},
		{"${{ success() && github.event_name == 'push' }}", Condition{}, `${{ ... }} expressions are GitHub Actions syntax, not nixflow's: a condition is a status function (success(), failure(), always(), cancelled()) or a bash command, e.g. [ "$BRANCH" = main ]`},
		{"(failure() || cancelled()", Condition{}, `missing ) in status expression "(failure() || cancelled()"`},
		{"!sucess()", Condition{}, `unknown status function "sucess()" (did you mean "success()"?) (known: success(), failure(), always(), cancelled())`},
		{"echo 'open", Condition{}, "invalid bash in condition: 1:6: reached EOF without closing quote `'`"},
	}
	for _, tt := range tests {
		got, err := ParseCondition(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseCondition(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCondition(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCondition(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if back, _ := ParseCondition(got.String()); back != got {
			t.Errorf("String() of %q does not parse back: %q", tt.in, got.String())
		}
	}
}

func TestConditionHolds(t *testing.T) {
	tests := []struct {
		cond                        string
		success, failure, cancelled bool
		want                        bool
	}{
		{"!cancelled()", false, true, false, true},
		{"!cancelled()", false, false, true, false},
		{"failure() || cancelled()", false, false, true, true},
		{"failure() || cancelled()", true, false, false, false},
		{"success() && !cancelled()", true, false, false, true},
		{"always()", false, false, true, true},
	}
	for _, tt := range tests {
		c, err := ParseCondition(tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Holds(StatusValues{Success: tt.success, Failure: tt.failure, Cancelled: tt.cancelled})
		if got != tt.want {
			t.Errorf("%s with success=%v failure=%v cancelled=%v = %v, want %v", tt.cond, tt.success, tt.failure, tt.cancelled, got, tt.want)
		}
	}
	for cond, want := range map[string]bool{"!cancelled()": false, "failure() || cancelled()": true, "always()": true, "success()": false} {
		c, _ := ParseCondition(cond)
		if c.Cleanup() != want {
			t.Errorf("%s: Cleanup() = %v, want %v", cond, !want, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"build", "test", "deploy", "lint"}
	for in, want := range map[string]string{"biuld": "build", "tset": "test", "deplyo": "deploy", "zzz": "", "b": ""} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSelect(t *testing.T) {
	plan, err := Compile("x.json", []byte(`{"version": 1, "name": "x", "jobs": {
		"a": {"steps": [{"bash": "true"}]}, "b": {"needs": ["a"], "steps": [{"bash": "true"}]},
		"c": {"needs": ["b"], "steps": [{"bash": "true"}]}, "d": {"steps": [{"bash": "true"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := Select(plan, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range sub.Jobs {
		names = append(names, j.Name)
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([][]string{{"a"}, {"b"}}, sub.Levels); diff != "" {
		t.Error(diff)
	}
	if _, err := Select(plan, []string{"bb", "e"}); err == nil || err.Error() != "unknown job \"bb\" (did you mean \"b\"?)\nunknown job \"e\"" {
		t.Errorf("Select unknown: %v", err)
	}
}

func TestSelectPatterns(t *testing.T) {
	plan, err := Compile("x.json", []byte(`{"version": 1, "name": "x", "jobs": {
		"test-os-a": {"steps": [{"bash": "true"}]}, "test-os-b": {"steps": [{"bash": "true"}]},
		"lint": {"steps": [{"bash": "true"}]}, "testing": {"steps": [{"bash": "true"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sel  []string
		want []string
	}{
		{[]string{"test-*"}, []string{"test-os-a", "test-os-b"}},
		{[]string{"test"}, []string{"test-os-a", "test-os-b"}},
		{[]string{"t*"}, []string{"test-os-a", "test-os-b", "testing"}},
		{[]string{"testing", "lint"}, []string{"lint", "testing"}},
	} {
		sub, err := Select(plan, tt.sel)
		if err != nil {
			t.Errorf("Select %q: %v", tt.sel, err)
			continue
		}
		var names []string
		for _, j := range sub.Jobs {
			names = append(names, j.Name)
		}
		if diff := cmp.Diff(tt.want, names); diff != "" {
			t.Errorf("Select %q (-want +got):\n%s", tt.sel, diff)
		}
	}
	if _, err := Select(plan, []string{"deploy-*"}); err == nil || err.Error() != `unknown job "deploy-*"` {
		t.Errorf("a glob matching nothing: %v", err)
	}
}

// TestCheckExecutors checks that a job whose executor type has no backend
// in a build is reported at the position of its type, with the backends
// there are, and that a plan whose types all have one passes.
func TestCheckExecutors(t *testing.T) {
	graph := `{"version": 1, "name": "x", "jobs": {
  "a": {"steps": [{"bash": "true"}]},
  "b": {"executor": {"type": "ssh", "host": "h"}, "steps": [{"bash": "true"}]}}}`
	plan, err := Compile("ci.json", []byte(graph))
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.CheckExecutors([]string{"local", "ssh"}); err != nil {
		t.Errorf("all types have a backend: %v", err)
	}
	err = plan.CheckExecutors([]string{"local", "oci"})
	want := `ci.json:3:30: jobs.b.executor.type: executor type "ssh" has no backend in this build of nixflow (available: local, oci)`
	if err == nil || err.Error() != want {
		t.Errorf("CheckExecutors = %v, want %s", err, want)
	}
}
