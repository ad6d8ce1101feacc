// Package chromiumtest renders HTML pages in headless Chromium (Debian's
// chromium) for tests: the DOM after the page's script ran, a screenshot,
// a printed PDF, with JavaScript on or off, and the page's own Navigation
// Timing. A test calling it skips when chromium is missing, unless
// NIXFLOW_TEST_REQUIRE lists chromium (testenv).
package chromiumtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/internal/testenv"
)

// Options say how to render a page.
type Options struct {
	// Hash is appended to the page's URL ("#job-3").
	Hash string
	// Width and Height are the window's size (1280x1000 when zero).
	Width, Height int
	// Screenshot takes a PNG of the window (one of a page scrolled to its
	// fragment comes out blank).
	Screenshot bool
	// NoScript renders with JavaScript disabled (the profile's content
	// setting, as a user who turned it off has it).
	NoScript bool
	// PDF prints the page (print media, A4 by Chromium's default).
	PDF bool
	// Timing adds a script at the end of a copy of the page that reads
	// the page's Navigation Timing when the load event fires, after
	// forcing style and layout of the whole document, and returns it in
	// Result.Timing. Chromium's own start-up is not part of it.
	Timing bool
}

// Timing is what the page measured of itself, in milliseconds from the
// start of its navigation.
type Timing struct {
	// ResponseEnd: the file is read.
	ResponseEnd float64 `json:"responseEnd"`
	// DOMInteractive: the document is parsed.
	DOMInteractive float64 `json:"domInteractive"`
	// DOMContentLoaded: the page's inline script has run.
	DOMContentLoaded float64 `json:"domContentLoadedEventEnd"`
	// LoadEventStart: everything is loaded.
	LoadEventStart float64 `json:"loadEventStart"`
	// LaidOut: style and layout of the whole document are done (forced
	// at the load event).
	LaidOut float64 `json:"laidOut"`
	// FirstContentfulPaint, when Chromium painted before the load event
	// (0 otherwise).
	FirstContentfulPaint float64 `json:"firstContentfulPaint"`
}

// Result is what Render gives.
type Result struct {
	DOM        string
	Screenshot image.Image
	PDF        []byte
	Timing     *Timing
	// Took is Chromium's whole run: start, render, exit.
	Took time.Duration
}

// timingScript is added to the page for Options.Timing. It writes its
// measure into the DOM within the load event, before the DOM is dumped.
const timingScript = `<script>window.addEventListener('load',function(){
var n=performance.getEntriesByType('navigation')[0];
document.documentElement.getBoundingClientRect();document.body.offsetHeight;
var t={responseEnd:n.responseEnd,domInteractive:n.domInteractive,domContentLoadedEventEnd:n.domContentLoadedEventEnd,
loadEventStart:n.loadEventStart,laidOut:performance.now(),firstContentfulPaint:0};
performance.getEntriesByName('first-contentful-paint').forEach(function(p){t.firstContentfulPaint=p.startTime});
var e=document.createElement('pre');e.id='chromiumtest-timing';e.textContent=JSON.stringify(t);document.body.appendChild(e);
});</script>`

var timingRE = regexp.MustCompile(`<pre id="chromiumtest-timing">([^<]*)</pre>`)

// Render renders page (an HTML file) in headless Chromium. Chromium runs
// in its own process group with its own profile, and the group is killed
// when it is done, so that nothing of it outlives the test. Script errors
// on the page fail the test.
func Render(t testing.TB, page string, o Options) Result {
	t.Helper()
	bin := testenv.NeedCommand(t, "chromium", "chromium")
	if o.Width == 0 {
		o.Width, o.Height = 1280, 1000
	}
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	if o.NoScript {
		// Read by Chromium when it creates the profile.
		if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		prefs := `{"profile":{"default_content_setting_values":{"javascript":2}}}`
		if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), []byte(prefs), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.Timing {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.LastIndex(data, []byte("</body>"))
		if i < 0 {
			t.Fatalf("%s has no </body>", page)
		}
		page = filepath.Join(dir, filepath.Base(page))
		timed := append(append(append([]byte(nil), data[:i]...), timingScript...), data[i:]...)
		if err := os.WriteFile(page, timed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot, pdf := filepath.Join(dir, "shot.png"), filepath.Join(dir, "page.pdf")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--disable-extensions", "--user-data-dir=" + profile,
		"--enable-logging=stderr", "--v=0", fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height), "--dump-dom"}
	if o.Screenshot {
		args = append(args, "--screenshot="+shot)
	}
	if o.PDF {
		args = append(args, "--no-pdf-header-footer", "--print-to-pdf="+pdf)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page+o.Hash)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := Result{DOM: stdout.String(), Took: time.Since(start)}
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
	if o.Timing {
		m := timingRE.FindStringSubmatch(res.DOM)
		if m == nil {
			t.Fatalf("the page did not report its timing (scripts off?)\n%s", stderr.String())
		}
		res.Timing = new(Timing)
		if err := json.Unmarshal([]byte(m[1]), res.Timing); err != nil {
			t.Fatalf("timing %q: %v", m[1], err)
		}
		res.DOM = strings.Replace(res.DOM, m[0], "", 1)
	}
	if o.Screenshot {
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
		}
		defer f.Close()
		if res.Screenshot, err = png.Decode(f); err != nil {
			t.Fatalf("screenshot: %v", err)
		}
	}
	if o.PDF {
		if res.PDF, err = os.ReadFile(pdf); err != nil {
			t.Fatalf("no PDF: %v\n%s", err, stderr.String())
		}
	}
	return res
}
