package script

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/actions"
)

// sopsStrings are values that JSON writes each in its own way: escapes,
// characters Go's encoder writes as \u (<, >, &, U+2028), UTF-8 of two
// to four bytes, quotes and backslashes at a string's end.
var sopsStrings = []string{
	"", "plain", "é<>&\u2028 😀", "line1\nline2\ttab \"q\" back\\", `\`, `\\"`, `"`, "\x01\x1f",
	"$HOME $(x) `y`", strings.Repeat("long \"quoted\" \\ value ", 600), " padded ", "ünïcödé ключ",
}

// sopsDoc builds a random document as sops writes one: a mapping of
// names to strings, numbers, booleans, nulls, lists and mappings.
func sopsDoc(rng *rand.Rand, depth int) map[string]any {
	doc := map[string]any{}
	for i := range 1 + rng.IntN(4) {
		key := fmt.Sprintf("k%d_%d", depth, i)
		switch r := rng.IntN(10); {
		case r < 5 || depth > 2:
			doc[key] = sopsStrings[rng.IntN(len(sopsStrings))]
		case r == 5:
			doc[key] = json.Number([]string{"1", "-2.5", "1e3", "0"}[rng.IntN(4)])
		case r == 6:
			doc[key] = []any{true, false, nil}[rng.IntN(3)]
		case r == 7:
			doc[key] = []any{sopsStrings[rng.IntN(len(sopsStrings))], json.Number("7"), sopsDoc(rng, depth+1)}
		default:
			doc[key] = sopsDoc(rng, depth+1)
		}
	}
	return doc
}

// TestSopsJSONAgrees reads sops' JSON output, random documents and
// written ones, with the compiled script's reader (nf_parse_sops) and
// with nixflow run's (actions.DecodeSops), and wants the same variables,
// or the same error, for each.
func TestSopsJSONAgrees(t *testing.T) {
	t.Parallel()
	type doc struct{ format, text string }
	docs := []doc{
		{"yaml", `{"a": "\ud83d\ude00 \ud83d x \ude00 \u00e9\u0041 \u005cn \\u0041"}`},
		{"yaml", `{"a":{"b":[1,{"c":"d"}]},"e":null}`},
		{"yaml", `{"a.b": "x"}`},
		{"yaml", `{"a": {"b": "x"}, "a_b": "y"}`},
		{"yaml", `{"a": "x\u0000y"}`},
		{"yaml", `{"a": {"b": ["\u0000"]}}`},
		{"yaml", `{"a": "\\u0000"}`},
		{"yaml", `{"a\u0000b": "x"}`},
		{"yaml", `{"a\u0000": {"b": "x"}}`},
		{"yaml", `{"a\u0007\u001f\u007f": "x"}`},
		{"ini", "{\n\t\"DEFAULT\": {\n\t\t\"top\": \"t\"\n\t},\n\t\"sec\": {\n\t\t\"k\": \"v\"\n\t}\n}\n"},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 120 {
		indent := "\t"
		if i%3 == 0 {
			indent = ""
		}
		data, err := json.MarshalIndent(sopsDoc(rng, 0), "", indent)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{"yaml", string(data) + "\n"})
	}
	var texts, input, run []string
	for _, d := range docs {
		texts = append(texts, d.text)
		run = append(run, readResult(actions.DecodeSops([]byte(d.text), d.format)))
	}
	for i, f := range agreeDocs(t, t.TempDir(), texts) {
		input = append(input, f+" "+docs[i].format)
	}
	read := `{ if [[ $arg == ini ]]; then nf_sops_ini=1; else nf_sops_ini=0; fi; nf_parse_sops "$data"; }`
	// The host's locale is often C: the reader must not depend on it.
	for _, locale := range []string{"C", "C.UTF-8"} {
		agree(t, locale+": ", texts, readAll(t, read, input, "LC_ALL="+locale), run)
	}
}
