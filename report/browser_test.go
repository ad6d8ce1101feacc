package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/internal/testenv"
)

// chromium renders page (an HTML file) in headless Chromium at the given
// window size, with hash appended to its URL, and returns the screenshot
// and the DOM after the page's script ran. Chromium runs in its own
// process group with its own profile, and the group is killed when it
// is done, so that nothing of it outlives the test.
func chromium(t *testing.T, page, hash string, width, height int) (image.Image, string, time.Duration) {
	return run(t, page, hash, width, height, true)
}

// chromiumDOM is chromium without a screenshot (one of a page scrolled to
// its fragment comes out blank).
func chromiumDOM(t *testing.T, page, hash string) string {
	_, dom, _ := run(t, page, hash, 1280, 1000, false)
	return dom
}

func run(t *testing.T, page, hash string, width, height int, screenshot bool) (image.Image, string, time.Duration) {
	t.Helper()
	bin := testenv.NeedCommand(t, "chromium", "chromium")
	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--disable-extensions", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--enable-logging=stderr", "--v=0", fmt.Sprintf("--window-size=%d,%d", width, height), "--dump-dom"}
	if screenshot {
		args = append(args, "--screenshot="+shot)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page+hash)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	// Script errors show in Chromium's log as console messages.
	if m := regexp.MustCompile(`(?m)^.*(Uncaught|SyntaxError|ReferenceError|TypeError).*$`).FindString(stderr.String()); m != "" {
		t.Errorf("the page's script failed: %s", m)
	}
	if !screenshot {
		return nil, stdout.String(), took
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img, stdout.String(), took
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
	r, err := Load(scenarios["pipeline"]().write(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img, dom, _ := chromium(t, page, "", 1100, 1400)

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

// TestBrowserLarge renders the report of a 1,000-job run: every job is in
// the DOM, and the page's script ran (the job named in the URL's fragment
// is highlighted wherever it is shown). How long Chromium took is logged,
// not asserted (docs/report.md has the measurement).
func TestBrowserLarge(t *testing.T) {
	t.Parallel()
	r, page := bigReport(t)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dom := chromiumDOM(t, file, "#job-500")
	took := time.Since(start)
	for i, j := range r.Jobs {
		if !strings.Contains(dom, fmt.Sprintf(`id="tl-%d"`, i)) || !strings.Contains(dom, ">"+j.Name+"<") {
			t.Errorf("job %q is not in the DOM", j.Name)
		}
	}
	// On the timeline, in the table, and its family's node in the graph.
	if n := len(regexp.MustCompile(`class="[^"]*\bhl\b`).FindAllString(dom, -1)); n != 3 {
		t.Errorf("job 500 highlighted in %d places, want 3", n)
	}
	t.Logf("1000 jobs: %d KiB of HTML, chromium start, render and exit in %v", len(page)/1024, took)
}
