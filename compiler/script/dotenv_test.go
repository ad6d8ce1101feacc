package script

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nixflow/nixflow/actions"
)

// dotenvPieces are lines (and parts of lines) that the dotenv grammar
// treats each in its own way: documents made of them tell the script's
// parser and nixflow run's (godotenv's) apart wherever they differ.
var dotenvPieces = []string{
	"", "   ", "\t", "# a comment", "  # indented comment", "A=1", "export B=2", "export  C = 3 ",
	"D: four", "E = 'single $A ${B}'", `F="double \"q\" \n nl ${A} $B \$A \\ \x"`, `G="multi`, `line"`,
	`H='multi`, `line'`, "I=val # comment # two", "J=a#b", "K=${A}-$B-${UNDEF}", "L=$(x) `y`",
	"M=\r", "N=crlf\r", `O=x\y`, `P="\\n"`, `Q=""`, `R=''`, `S="x"y`, `T="x" # c`, `U="a\"`,
	"bad line", "V", "W.X=1", "1Y=2", "Z Z=3", "\tTAB=4", "export", "export E2", "lower=ok",
	"UNI=héllo wörld", `DQ="it's"`, `SQ='say "hi"'`, "EMPTY=", "SPACES=   padded   ",
	`ESC="\r\t\$\\"`, "DOLLAR=$", "BR=${", "PAREN=$(", `"QK"=1`, "=noval", ": colon", "A=again",
	"export F2=\"two\nlines\"", "C1=a # b", "C2=#notcomment", "C3='x' # y",
	"CR1=\"crlf\r", "CR2=x\ry", "V1\v=1", "F1\f=2", "X=\\\n", `Y="\\"`, `Z='a\'b'`, "export=1", "exportED=1",
	// Blanks beyond ASCII: godotenv skips any Unicode space before a
	// statement, and takes U+0085 and U+00A0 as blanks around keys and
	// values.
	"\u00a0NB=1", "\u0085NEL=2", "\u3000IDEO=3", "\u2000EN=4", "\u1680OG=5", "\u2028LS=6", "\u00a0",
	"\u00a0# comment", "NBV=\u00a0x\u00a0", "NBC=a\u00a0# c", "NLC=a\u0085# c", "export\u00a0NBE=7",
	"NBK\u00a0=8", "NBK\u0085: 9", "NBQ=\u00a0'q'", "KNB\u00a0X=1", "KEN\u2000=1", "NBD=\u00a0\"d\"\u00a0",
	"µ=1", "KÀ=1", "ª²=2", "Kü\u00a0 =3", "X=a\u00a0#b # c\u0085#d e",
	"V1\vX=1", "F\fG=2", "PAD=" + strings.Repeat("\u00a0 ", 300) + "x" + strings.Repeat(" \u0085", 300),
	"R1=a" + strings.Repeat(" ", 3000), strings.Repeat(" ", 3000) + "R2=b", "R3=x" + strings.Repeat("\u00a0", 1500),
	"R4" + strings.Repeat(" ", 2000) + "=y", "R5=à\u00a0", "R6=\u00a0µ\u00a0 # c", "R7=†\u00a0",
}

// TestDotenvAgrees reads thousands of dotenv documents, made of the
// pieces above, with the compiled script's parser (nf_dotenv) and with
// nixflow run's (actions.ReadEnvFile), and wants the same keys and values,
// or the same error, for each.
func TestDotenvAgrees(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var docs []string
	for _, p := range dotenvPieces {
		docs = append(docs, p, p+"\n")
	}
	for range 3000 {
		var lines []string
		for range 1 + rng.IntN(6) {
			lines = append(lines, dotenvPieces[rng.IntN(len(dotenvPieces))])
		}
		doc := strings.Join(lines, "\n")
		if rng.IntN(2) == 0 {
			doc += "\n"
		}
		docs = append(docs, doc)
	}
	// Each file is read whole (none holds a NUL byte), as the script
	// reads an --env-file.
	files := agreeDocs(t, t.TempDir(), docs)
	script := readAll(t, `nf_dotenv "$data"`, files, "LC_ALL=C.UTF-8")
	var run []string
	for _, f := range files {
		run = append(run, readResult(actions.ReadEnvFile(f)))
	}
	agree(t, "", docs, script, run)
}
