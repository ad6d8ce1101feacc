package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/joho/godotenv"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

// ProviderError is a provider that could not produce its variables. Its
// message names the provider and the cause, never a value.
type ProviderError struct {
	Where    string // "workflow" or "job NAME"
	Index    int
	Provider compiler.Provider
	Err      error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("%s envFrom[%d] (%s): %v", e.Where, e.Index, describeProvider(e.Provider), e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

func describeProvider(p compiler.Provider) string {
	switch p.Type {
	case "file", "sops":
		return fmt.Sprintf("%s %q", p.Type, p.Path)
	case "command":
		cmd := p.Command
		if len(cmd) > 40 {
			cmd = cmd[:37] + "..."
		}
		return fmt.Sprintf("command %q", cmd)
	default:
		return p.Type
	}
}

// MissingError lists the required variables that no layer set.
type MissingError struct {
	Names []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("required variables not set: %s", strings.Join(e.Names, ", "))
}

// providerResult is what a list of providers yields.
type providerResult struct {
	values envMap
	// secrets maps the names of secret variables to their values.
	secrets map[string]string
	// secretNames are the names whose final value, whichever layer gives
	// it (an override included), is a secret: those of secrets, and the
	// names of secret required providers.
	secretNames []string
	required    []string
}

// resolveProviders runs providers in order; later values win. Relative
// paths are taken from dir; command providers run there with environ.
// When a provider fails, the result still holds the secrets of the
// providers before it, so that the error can be masked with them (a
// failing command's stderr may repeat what an earlier provider gave).
func resolveProviders(ctx context.Context, host hostFunc, where string, ps []compiler.Provider, dir string, environ []string) (*providerResult, error) {
	res := &providerResult{values: envMap{}, secrets: map[string]string{}}
	for i, p := range ps {
		vals, err := runProvider(ctx, host, p, dir, environ)
		if err != nil {
			return res, &ProviderError{Where: where, Index: i, Provider: p, Err: err}
		}
		res.values.set(vals)
		if p.Secret() {
			for k, v := range vals {
				res.secrets[k] = v
				res.secretNames = append(res.secretNames, k)
			}
			if p.Type == "required" {
				res.secretNames = append(res.secretNames, p.Names...)
			}
		}
		res.required = append(res.required, p.Names...)
	}
	return res, nil
}

func runProvider(ctx context.Context, host hostFunc, p compiler.Provider, dir string, environ []string) (map[string]string, error) {
	switch p.Type {
	case "static":
		return p.Values, nil
	case "required":
		return nil, nil
	case "file":
		data, err := os.ReadFile(resolve(dir, p.Path))
		if errors.Is(err, fs.ErrNotExist) && !p.Required {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		vals, err := parseDotenv(data)
		if err != nil {
			return nil, err
		}
		return vals, nil
	case "sops":
		file := resolve(dir, p.Path)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) && !p.Required {
			return nil, nil
		}
		return runSops(ctx, file, p.Format, environ)
	case "exec":
		return runExec(ctx, p, dir, environ)
	case "command":
		var out bytes.Buffer
		code, stderr, err := host(ctx, p.Command, environ, dir, &out)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, fmt.Errorf("exited with status %d%s", code, stderrHint(stderr))
		}
		vals, err := parseDotenv(out.Bytes())
		if err != nil {
			return nil, fmt.Errorf("its output: %w", err)
		}
		return vals, nil
	}
	return nil, fmt.Errorf("unknown provider type %q", p.Type)
}

// runSops decrypts a sops file (yaml, json, dotenv or ini) and returns its
// values as variables. Nested keys are flattened, joined with '_'
// (db: {password: x} gives db_password), list items by index (hosts_0),
// ini sections likewise (section_KEY).
func runSops(ctx context.Context, file, format string, environ []string) (map[string]string, error) {
	if _, err := exec.LookPath("sops"); err != nil {
		return nil, errors.New("the sops binary is not on PATH")
	}
	cmd := exec.CommandContext(ctx, "sops", "--decrypt", "--input-type", format, "--output-type", "json", file)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sops --decrypt: %v%s", err, sopsMessage(stderr.String()))
	}
	return DecodeSops(stdout.Bytes(), format)
}

// DecodeSops reads the JSON that `sops --decrypt --output-type json`
// wrote for a file of the given input format, as variables: nested keys
// joined with '_', list items by index, and for ini, the DEFAULT section's
// keys under their own names.
func DecodeSops(data []byte, format string) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read the decrypted file: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("the decrypted file is not a mapping of names to values")
	}
	vals := map[string]string{}
	if format == "ini" {
		// Keys outside any section are sops' DEFAULT section: they keep
		// their names; the others become SECTION_KEY.
		if def, ok := top["DEFAULT"].(map[string]any); ok {
			delete(top, "DEFAULT")
			if err := flatten("", def, vals); err != nil {
				return nil, err
			}
		}
	}
	if err := flatten("", top, vals); err != nil {
		return nil, err
	}
	return vals, nil
}

// flatten turns nested values into variables. It names keys in errors,
// never values.
func flatten(prefix string, v any, out map[string]string) error {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "_" + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if err := flatten(join(k), child, out); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for i, child := range v {
			if err := flatten(join(strconv.Itoa(i)), child, out); err != nil {
				return err
			}
		}
		return nil
	}
	if !executors.ValidName(prefix) {
		return fmt.Errorf("key %q %s", prefix, notAName)
	}
	if _, dup := out[prefix]; dup {
		return fmt.Errorf("two keys flatten to the same variable %q", prefix)
	}
	switch v := v.(type) {
	case nil:
		out[prefix] = ""
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("key %q: its value %s", prefix, holdsNUL)
		}
		out[prefix] = v
	default:
		out[prefix] = fmt.Sprint(v)
	}
	return nil
}

// ReadEnvFile reads a dotenv file (for --env-file), with errors that never
// quote its content.
func ReadEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDotenv(data)
}

// ErrNotDotenv is text that is not in dotenv syntax (KEY=VALUE lines).
var ErrNotDotenv = errors.New("not KEY=VALUE lines (dotenv syntax)")

// parseDotenv parses dotenv text with godotenv. Its error messages quote
// the text that follows the mistake, which may be a secret, so they are
// never passed on: only which line is at fault.
func parseDotenv(data []byte) (map[string]string, error) {
	if n := nulLine(data); n > 0 {
		return nil, fmt.Errorf("line %d %s", n, holdsNUL)
	}
	vals, err := godotenv.UnmarshalBytes(data)
	if err == nil && !keyless(vals) {
		if err := dotenvNames(data, vals); err != nil {
			return nil, err
		}
		return vals, nil
	}
	// Find the first line that does not parse on its own, with its
	// newline; multi-line values make this a guess, so it is said as
	// one.
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if lvals, lerr := godotenv.UnmarshalBytes(line); lerr != nil || keyless(lvals) {
			return nil, fmt.Errorf("%w, near line %d", ErrNotDotenv, i+1)
		}
	}
	return nil, ErrNotDotenv
}

// keyless tells whether godotenv read a value without a key: a line that
// starts with = or :, or a last line of name characters alone ("FOO", no
// newline after it). Both are mistakes, as a line of name characters
// followed by a newline is to godotenv.
func keyless(vals map[string]string) bool {
	_, ok := vals[""]
	return ok
}

// dotenvKey is the key a dotenv line starts, as godotenv reads it
// (letters, digits, '_', '.' and blanks before '=' or ':').
var dotenvKey = regexp.MustCompile(`^[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.\t ]*)[=:]`)

// dotenvNames refuses keys that are no variable name ("a.b", "1X",
// "KEY SP"): godotenv takes them, no step could read them. The error
// names the first such key and its line.
func dotenvNames(data []byte, vals map[string]string) error {
	bad := false
	for k := range vals {
		bad = bad || !executors.ValidName(k)
	}
	if !bad {
		return nil
	}
	for i, line := range bytes.Split(data, []byte("\n")) {
		m := dotenvKey.FindSubmatch(line)
		if m == nil {
			continue
		}
		k := strings.TrimRight(string(m[1]), " \t")
		if _, ok := vals[k]; ok && !executors.ValidName(k) {
			return fmt.Errorf("line %d: key %q %s", i+1, k, notAName)
		}
	}
	var keys []string
	for k := range vals {
		if !executors.ValidName(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return fmt.Errorf("key %q %s", keys[0], notAName)
}

// notAName says why a key is refused as a variable's name.
const notAName = "is not a valid variable name (letters, digits and _, not starting with a digit)"

// nulLine is the number of the first line of data that holds a NUL
// byte, 0 for none: no environment variable can carry one, and the step
// that got the variable could not start.
func nulLine(data []byte) int {
	i := bytes.IndexByte(data, 0)
	if i < 0 {
		return 0
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

// holdsNUL says why a line with a NUL byte is refused.
const holdsNUL = "holds a NUL byte, which no environment variable can carry"

// stderrHint keeps the last line of a command's stderr for an error message.
// sopsMessage is what sops said, whole (its last line alone, "but none
// were.", says nothing), up to a bound, with a hint when no key could
// decrypt the file: the usual mistake.
func sopsMessage(stderr string) string {
	const maxLines = 20
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > maxLines {
		lines = append(lines[:maxLines], "...")
	}
	msg := ": " + strings.Join(lines, "\n  ")
	if strings.Contains(stderr, "Failed to get the data key") {
		msg += "\n  hint: sops found no key that decrypts this file: with age, set SOPS_AGE_KEY_FILE to the key file" +
			" (or SOPS_AGE_KEY to the key), in nixflow's environment; see docs/secrets.md"
	}
	return msg
}

func stderrHint(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return ""
	}
	return ": " + last
}

func resolve(dir, p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// checkRequired reports the required names that env lacks, all at once.
func checkRequired(env envMap, names []string) error {
	var missing []string
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := env[n]; !ok && !seen[n] {
			missing = append(missing, n)
			seen[n] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return &MissingError{Names: missing}
}
