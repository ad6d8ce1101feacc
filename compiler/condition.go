package compiler

import (
	"fmt"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

var statusCall = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\(\s*\)`)

var statusNames = []string{"success", "failure", "always", "cancelled"}

// ParseCondition parses a job or step condition: a status function
// (`success()`, `failure()`, `always()`, `cancelled()`), a bash command
// (ANDed with success()), or a status function and a command joined with
// `&&`. The command is checked with a bash parser so that a syntax error
// is reported before anything runs; its text is kept exactly as written.
func ParseCondition(s string) (Condition, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Condition{}, fmt.Errorf("empty condition (use %q to run unconditionally)", "always()")
	}
	m := statusCall.FindStringSubmatch(text)
	if m == nil {
		if err := checkBash(text); err != nil {
			return Condition{}, err
		}
		return Condition{Status: StatusSuccess, Command: text}, nil
	}
	name := m[1]
	known := false
	for _, k := range statusNames {
		known = known || k == name
	}
	if !known {
		hint := ""
		if s := suggest(name, statusNames); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s+"()")
		}
		return Condition{}, fmt.Errorf("unknown status function %q%s (known: success(), failure(), always(), cancelled())", name+"()", hint)
	}
	rest := strings.TrimSpace(text[len(m[0]):])
	if rest == "" {
		return Condition{Status: Status(name)}, nil
	}
	cmd, ok := strings.CutPrefix(rest, "&&")
	cmd = strings.TrimSpace(cmd)
	if !ok || cmd == "" {
		return Condition{}, fmt.Errorf("%s() may only be followed by `&& COMMAND`, got %q", name, rest)
	}
	if err := checkBash(cmd); err != nil {
		return Condition{}, err
	}
	return Condition{Status: Status(name), Command: cmd}, nil
}

func checkBash(src string) error {
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	if _, err := p.Parse(strings.NewReader(src), ""); err != nil {
		return fmt.Errorf("invalid bash in condition: %v", err)
	}
	return nil
}
