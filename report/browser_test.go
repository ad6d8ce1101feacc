package report

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixflow/nixflow/internal/chromiumtest"
)

// chromium renders page (an HTML file) in headless Chromium at the given
// window size, with hash appended to its URL, and returns the screenshot
// and the DOM after the page's script ran.
func chromium(t *testing.T, page, hash string, width, height int) (image.Image, string) {
	r := chromiumtest.Render(t, page, chromiumtest.Options{Hash: hash, Width: width, Height: height, Screenshot: true})
	return r.Screenshot, r.DOM
}

// bigReport is the model and the page of a 1,000-job run, made once for
// the tests that need them.
var bigReport = func() func(t *testing.T) (*Run, []byte) {
	var once sync.Once
	var r *Run
	var page []byte
	var err error
	return func(t *testing.T) (*Run, []byte) {
		once.Do(func() {
			var dir string
			if dir, err = os.MkdirTemp("", "nixflow-report-"); err != nil {
				return
			}
			defer os.RemoveAll(dir)
			if r, err = Load(bigScenario(1000, 8).write(t, dir)); err != nil {
				return
			}
			var b bytes.Buffer
			err = WriteHTML(&b, r)
			page = b.Bytes()
		})
		if err != nil {
			t.Fatal(err)
		}
		return r, page
	}
}()

// colours counts the pixels of img close to each of the given colours,
// and those that are not white.
func colours(img image.Image, want map[string][3]int) (map[string]int, int) {
	got := map[string]int{}
	ink := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			if c != [3]int{255, 255, 255} {
				ink++
			}
			for name, w := range want {
				if abs(c[0]-w[0]) < 12 && abs(c[1]-w[1]) < 12 && abs(c[2]-w[2]) < 12 {
					got[name]++
				}
			}
		}
	}
	return got, ink
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestBrowser opens the report of the pipeline scenario in headless
// Chromium: the screenshot is not blank and shows the result colours;
// the DOM holds every job on the timeline, in the graph and in the table,
// the critical path marked. UPDATE_SCREENSHOT=1 saves the screenshot as
// docs/report.png.
func TestBrowser(t *testing.T) {
	t.Parallel()
	r, page := writePage(t, "pipeline")
	img, dom := chromium(t, page, "", 1100, 1400)

	got, ink := colours(img, map[string][3]int{"success": {0x2d, 0xa4, 0x4e}, "failure": {0xcf, 0x22, 0x2e}})
	bounds := img.Bounds()
	if total := bounds.Dx() * bounds.Dy(); ink < total/20 {
		t.Errorf("screenshot is nearly blank: %d of %d pixels not white", ink, total)
	}
	for _, c := range []string{"success", "failure"} {
		if got[c] < 200 {
			t.Errorf("screenshot shows %d pixels of the %s colour", got[c], c)
		}
	}
	for i, j := range r.Jobs {
		for _, id := range []string{fmt.Sprintf(`id="tl-%d"`, i), fmt.Sprintf(`id="job-%d"`, i)} {
			if !strings.Contains(dom, id) {
				t.Errorf("job %q: no %s in the DOM", j.Name, id)
			}
		}
		if !strings.Contains(dom, ">"+j.Name+"<") {
			t.Errorf("job %q is not named in the DOM", j.Name)
		}
	}
	for _, want := range []string{`id="critical-path"`, `class="bar success critical"`, `class="edge critical"`, `class="node failure critical"`, `id="run-result">failure<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}
	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		var out bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		if err := enc.Encode(&out, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "report.png"), out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writePage writes the report of a scenario as an HTML file.
func writePage(t *testing.T, name string) (*Run, string) {
	t.Helper()
	r, err := Load(scenarios[name]().write(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return r, page
}

// TestBrowserNoScript opens the report of the pipeline scenario with
// JavaScript disabled, as docs/report.md promises it reads: the header,
// every job on the timeline (its row, its bar with its steps), in the
// graph and in the table, the critical path marked; and nothing of what
// the script does (the job in the URL's fragment is not highlighted,
// which shows that scripts were off). Printed to PDF, the page is a PDF of
// at least one page whose links include those of every job's timeline bar
// and table row (Chromium keeps a page's links in the PDF it prints).
func TestBrowserNoScript(t *testing.T) {
	t.Parallel()
	r, page := writePage(t, "pipeline")
	res := chromiumtest.Render(t, page, chromiumtest.Options{Hash: "#job-1", NoScript: true, PDF: true})
	dom := res.DOM
	if strings.Contains(dom, " hl") || strings.Contains(dom, `"hl`) {
		t.Error("a job is highlighted: the page's script ran")
	}
	for i, j := range r.Jobs {
		for _, re := range []string{
			// Its row on the timeline: its name, then its bar.
			fmt.Sprintf(`<div class="row"><a class="name mono" href="#job-%d" data-j="%d" title="%s">%s</a><div class="track">(<div class="q"[^>]*></div>)?<a class="bar [^"]*" id="tl-%d"`, i, i, regexp.QuoteMeta(j.Name), regexp.QuoteMeta(j.Name), i),
			// Its node in the graph (the scenario's family is small: a node a job).
			fmt.Sprintf(`<a class="node [^"]*" href="#job-%d" data-j="%d"><title>`, i, i),
			// Its row in the table.
			fmt.Sprintf(`<tr id="job-%d" data-j="%d" class="[^"]*"><td class="mono"><a href="#tl-%d">%s</a>`, i, i, i, regexp.QuoteMeta(j.Name)),
		} {
			if !regexp.MustCompile(re).MatchString(dom) {
				t.Errorf("job %q: the DOM has no match for %s", j.Name, re)
			}
		}
		if n := len(regexp.MustCompile(fmt.Sprintf(`<div class="seg [^"]*" style="[^"]*" title="%s`, regexp.QuoteMeta(j.Name))).FindAllString(dom, -1)); j.Ran && len(j.Steps) > 0 && n == 0 {
			t.Errorf("job %q: no step segments on its bar", j.Name)
		}
	}
	for _, want := range []string{`id="run-result">failure<`, `id="critical-path"`, `class="bar success critical"`, `class="edge critical"`, `class="node failure critical"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}

	pdf := res.PDF
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf[max(len(pdf)-64, 0):], []byte("%%EOF")) {
		t.Fatalf("not a PDF: %d bytes starting %q", len(pdf), pdf[:min(len(pdf), 16)])
	}
	if n := len(regexp.MustCompile(`/Type /Page\b`).FindAll(pdf, -1)); n < 1 {
		t.Errorf("the PDF has %d pages", n)
	}
	for i, j := range r.Jobs {
		for _, name := range []string{fmt.Sprintf("tl-%d", i), fmt.Sprintf("job-%d", i)} {
			if !bytes.Contains(pdf, []byte("/"+name+" ")) && !bytes.Contains(pdf, []byte("("+name+")")) {
				t.Errorf("job %q: the PDF has no destination %s", j.Name, name)
			}
		}
	}
	t.Logf("PDF: %d bytes", len(pdf))
}

// TestBrowserLarge renders the report of a 1,000-job run: every job is in
// the DOM, and the page's script ran (the job named in the URL's fragment
// is highlighted wherever it is shown). The page's own timing is logged,
// not asserted (BenchmarkBrowser1000 measures it; docs/performance.md has
// the figures).
func TestBrowserLarge(t *testing.T) {
	t.Parallel()
	r, page := bigReport(t)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	res := chromiumtest.Render(t, file, chromiumtest.Options{Hash: "#job-500", Timing: true})
	dom := res.DOM
	for i, j := range r.Jobs {
		if !strings.Contains(dom, fmt.Sprintf(`id="tl-%d"`, i)) || !strings.Contains(dom, ">"+j.Name+"<") {
			t.Errorf("job %q is not in the DOM", j.Name)
		}
	}
	// On the timeline, in the table, and its family's node in the graph.
	if n := len(regexp.MustCompile(`class="[^"]*\bhl\b`).FindAllString(dom, -1)); n != 3 {
		t.Errorf("job 500 highlighted in %d places, want 3", n)
	}
	tm := res.Timing
	t.Logf("1000 jobs: %d KiB of HTML; the page: parsed %.0f ms, script done %.0f ms, laid out %.0f ms, first paint %.0f ms; chromium start to exit %v",
		len(page)/1024, tm.DOMInteractive, tm.DOMContentLoaded, tm.LaidOut, tm.FirstContentfulPaint, res.Took.Round(time.Millisecond))
}

// BenchmarkBrowser1000 measures how long headless Chromium takes to draw
// the report of a 1,000-job run, by the page's own Navigation Timing:
// from the start of its navigation to the document parsed, its script
// run, and style and layout of the whole page done. Chromium's start-up
// and exit are not part of it.
//
//	go test -run '^$' -bench Browser1000 -benchtime 5x ./report/
func BenchmarkBrowser1000(b *testing.B) {
	file := filepath.Join(b.TempDir(), "report.html")
	var page []byte
	{
		dir := b.TempDir()
		r, err := Load(bigScenario(1000, 8).write(b, dir))
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteHTML(&buf, r); err != nil {
			b.Fatal(err)
		}
		page = buf.Bytes()
	}
	if err := os.WriteFile(file, page, 0o644); err != nil {
		b.Fatal(err)
	}
	var parsed, script, laidOut []float64
	for b.Loop() {
		tm := chromiumtest.Render(b, file, chromiumtest.Options{Timing: true}).Timing
		parsed, script, laidOut = append(parsed, tm.DOMInteractive), append(script, tm.DOMContentLoaded), append(laidOut, tm.LaidOut)
	}
	b.ReportMetric(median(parsed), "parsed-ms")
	b.ReportMetric(median(script), "script-ms")
	b.ReportMetric(median(laidOut), "laidout-ms")
	b.ReportMetric(float64(len(page))/1024, "KiB")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
