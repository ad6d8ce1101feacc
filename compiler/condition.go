package compiler

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

var statusNames = []string{"success", "failure", "always", "cancelled"}

// statusStart matches the start of a status expression: a function call,
// possibly behind `!` and `(`. Anything else is a bash command.
var statusStart = regexp.MustCompile(`^[!(\s]*[A-Za-z_][A-Za-z0-9_]*\s*\(\s*\)`)

// bareStatus matches a status function written without its parentheses,
// alone or joined to something else.
var bareStatus = regexp.MustCompile(`^!?\s*(success|failure|always|cancelled)\s*($|&&|\|\|)`)

// ParseCondition parses a job or step condition: a status expression
// (`success()`, `failure()`, `always()`, `cancelled()`, combined with `!`,
// `&&`, `||` and parentheses), a bash command (ANDed with success()), or a
// status expression and a command joined with `&&`. The command is
// checked with a bash parser so that a syntax error is reported before
// anything runs; its text is kept exactly as written.
// statusOnly is a condition of status functions alone, which holds as
// written inside ${{ }} (nixlib/workflow.nix's conditionProblem says the
// same).
var statusOnly = regexp.MustCompile(`^[!()&| ]*(?:(?:success|failure|always|cancelled)\(\)[!()&| ]*)+$`)

func ParseCondition(s string) (Condition, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Condition{}, fmt.Errorf("empty condition (use %q to run unconditionally)", "always()")
	}
	if strings.Contains(text, "${{") {
		inner := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(text, "${{"), "}}"))
		if statusOnly.MatchString(inner) {
			return Condition{}, fmt.Errorf("${{ ... }} expressions are GitHub Actions syntax, not nixflow's: write the condition itself (%q)", inner)
		}
		// github.ref == 'main' as a command would fail, and skip.
		return Condition{}, errors.New(`${{ ... }} expressions are GitHub Actions syntax, not nixflow's: a condition is a status function (success(), failure(), always(), cancelled()) or a bash command, e.g. [ "$BRANCH" = main ]`)
	}
	if m := bareStatus.FindStringSubmatch(text); m != nil {
		return Condition{}, fmt.Errorf("%q is not a status function call: write %q (a bare word would run as a bash command)", m[1], m[1]+"()")
	}
	if !statusStart.MatchString(text) {
		if err := checkBash(text); err != nil {
			return Condition{}, err
		}
		return Condition{Status: StatusSuccess, Command: text}, nil
	}
	p := &exprParser{src: text}
	e, err := p.or()
	if err != nil {
		return Condition{}, err
	}
	c := Condition{Status: StatusExpr, Expr: e.String()}
	if call, ok := e.(callExpr); ok {
		c.Status, c.Expr = Status(call), ""
	}
	rest := strings.TrimSpace(p.src[p.pos:])
	if rest == "" {
		return c, nil
	}
	cmd, ok := strings.CutPrefix(rest, "&&")
	cmd = strings.TrimSpace(cmd)
	if !ok || cmd == "" {
		return Condition{}, fmt.Errorf("%s may only be followed by `&& COMMAND`, got %q", e, rest)
	}
	if p.bareOr {
		return Condition{}, fmt.Errorf("put the status expression in parentheses: (%s) && %s", e, cmd)
	}
	if err := checkBash(cmd); err != nil {
		return Condition{}, err
	}
	c.Command = cmd
	return c, nil
}

func checkBash(src string) error {
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	if _, err := p.Parse(strings.NewReader(src), ""); err != nil {
		return fmt.Errorf("invalid bash in condition: %v", err)
	}
	return nil
}

// StatusValues are the values of the status functions where a condition
// is evaluated.
type StatusValues struct {
	Success, Failure, Cancelled bool
}

// Holds evaluates the condition's status function or expression (not its
// command).
func (c Condition) Holds(v StatusValues) bool {
	if c.Status != StatusExpr {
		return callExpr(c.Status).eval(v)
	}
	p := &exprParser{src: c.Expr}
	e, err := p.or()
	if err != nil {
		// The compiler made Expr; it always parses.
		panic(fmt.Sprintf("status expression %q: %v", c.Expr, err))
	}
	return e.eval(v)
}

// Cleanup reports whether the condition can hold in a cancelled run: such
// jobs and steps (always(), cancelled(), failure() || cancelled(), ...) run
// after a first Ctrl-C and stop only at a second.
func (c Condition) Cleanup() bool {
	return c.Holds(StatusValues{Cancelled: true})
}

type statusExpr interface {
	eval(StatusValues) bool
	String() string
}

type callExpr Status

func (c callExpr) eval(v StatusValues) bool {
	switch Status(c) {
	case StatusAlways:
		return true
	case StatusCancelled:
		return v.Cancelled
	case StatusFailure:
		return v.Failure
	default:
		return v.Success
	}
}

func (c callExpr) String() string { return string(c) + "()" }

type notExpr struct{ x statusExpr }

func (n notExpr) eval(v StatusValues) bool { return !n.x.eval(v) }
func (n notExpr) String() string {
	if _, ok := n.x.(callExpr); ok {
		return "!" + n.x.String()
	}
	if _, ok := n.x.(notExpr); ok {
		return "!" + n.x.String()
	}
	return "!(" + n.x.String() + ")"
}

type andExpr struct{ x, y statusExpr }

func (a andExpr) eval(v StatusValues) bool { return a.x.eval(v) && a.y.eval(v) }
func (a andExpr) String() string           { return paren(a.x) + " && " + paren(a.y) }

type orExpr struct{ x, y statusExpr }

func (o orExpr) eval(v StatusValues) bool { return o.x.eval(v) || o.y.eval(v) }
func (o orExpr) String() string           { return o.x.String() + " || " + o.y.String() }

// paren wraps an || inside an &&.
func paren(e statusExpr) string {
	if _, ok := e.(orExpr); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// exprParser reads a status expression from the start of src, stopping
// before `&& COMMAND` where COMMAND is not a status expression.
type exprParser struct {
	src string
	pos int
	// depth counts open parentheses; bareOr records an || outside them.
	depth  int
	bareOr bool
}

var callToken = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*\)`)

func (p *exprParser) skip() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

func (p *exprParser) peek(tok string) bool {
	p.skip()
	return strings.HasPrefix(p.src[p.pos:], tok)
}

func (p *exprParser) or() (statusExpr, error) {
	x, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek("||") {
		if !statusStart.MatchString(p.src[p.pos+2:]) {
			break
		}
		p.pos += 2
		y, err := p.and()
		if err != nil {
			return nil, err
		}
		x = orExpr{x, y}
		p.bareOr = p.bareOr || p.depth == 0
	}
	return x, nil
}

func (p *exprParser) and() (statusExpr, error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peek("&&") {
		// `&& CMD` ends the expression: what follows is bash.
		if !statusStart.MatchString(p.src[p.pos+2:]) {
			break
		}
		p.pos += 2
		y, err := p.unary()
		if err != nil {
			return nil, err
		}
		x = andExpr{x, y}
	}
	return x, nil
}

func (p *exprParser) unary() (statusExpr, error) {
	p.skip()
	rest := p.src[p.pos:]
	switch {
	case strings.HasPrefix(rest, "!"):
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	case strings.HasPrefix(rest, "("):
		p.pos++
		p.depth++
		x, err := p.or()
		p.depth--
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("missing ) in status expression %q", p.src)
		}
		p.pos++
		return x, nil
	}
	m := callToken.FindStringSubmatch(rest)
	if m == nil {
		if rest == "" {
			return nil, fmt.Errorf("status expression %q ends early", p.src)
		}
		return nil, fmt.Errorf("expected a status function at %q (known: success(), failure(), always(), cancelled(); a bash command comes last, after &&)", rest)
	}
	if err := knownStatus(m[1]); err != nil {
		return nil, err
	}
	p.pos += len(m[0])
	return callExpr(m[1]), nil
}

func knownStatus(name string) error {
	for _, k := range statusNames {
		if k == name {
			return nil
		}
	}
	hint := ""
	if s := suggest(name, statusNames); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s+"()")
	}
	return fmt.Errorf("unknown status function %q%s (known: success(), failure(), always(), cancelled())", name+"()", hint)
}
