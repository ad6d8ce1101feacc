package main

import (
	"encoding/xml"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nixflow/nixflow/actions"
	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/timing"
)

// The JUnit XML that CI systems (GitLab, Jenkins, Buildkite, GitHub
// test-report actions) read: one testsuite for the run, one testcase per
// job, its steps as properties.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties *junitProps     `xml:"properties,omitempty"`
	Failure    *junitFailure   `xml:"failure,omitempty"`
	Skipped    *junitSkipped   `xml:"skipped,omitempty"`
	SystemOut  *junitSystemOut `xml:"system-out,omitempty"`
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

type junitSystemOut struct {
	Text string `xml:",cdata"`
}

// writeJUnit writes a run's result as JUnit XML to path. A failed job's
// failure holds its reason and the last lines of its failed steps; every
// text goes through the masker.
func writeJUnit(path string, res *actions.Result, masker *actions.Masker) error {
	suite := junitSuite{Name: res.Name, Time: seconds(res.Duration.Std())}
	if !res.Started.IsZero() {
		suite.Timestamp = res.Started.UTC().Format(time.RFC3339)
	}
	for _, j := range res.Jobs {
		c := junitCase{Name: j.Job, Classname: res.Name, Time: seconds(j.Duration.Std())}
		var props []junitProp
		for _, s := range j.Steps {
			v := string(s.Status)
			if s.Allowed {
				v += " (allowed)"
			}
			if s.Duration > 0 {
				v += " in " + timing.Human(s.Duration.Std())
			}
			if s.Attempts > 1 {
				v += fmt.Sprintf(", %d attempts", s.Attempts)
			}
			props = append(props, junitProp{Name: "step " + s.Step, Value: junitText(masker, v)})
		}
		if j.Where != "" {
			props = append(props, junitProp{Name: "where", Value: j.Where})
		}
		if len(props) > 0 {
			c.Properties = &junitProps{props}
		}
		switch {
		case j.Status == event.StatusFailure && !j.Allowed:
			suite.Failures++
			var text strings.Builder
			for _, s := range j.Steps {
				if s.Status != event.StatusFailure || len(s.Tail) == 0 {
					continue
				}
				fmt.Fprintf(&text, "last lines of %s:\n", s.Step)
				for _, l := range s.Tail {
					text.WriteString(junitText(masker, l) + "\n")
				}
			}
			c.Failure = &junitFailure{Message: junitText(masker, j.Reason), Type: string(j.Domain), Text: text.String()}
		case j.Status == event.StatusFailure:
			c.SystemOut = &junitSystemOut{Text: "failed (allowed): " + junitText(masker, j.Reason)}
		case j.Status == event.StatusSkipped || j.Status == event.StatusCancelled:
			suite.Skipped++
			c.Skipped = &junitSkipped{Message: string(j.Status) + ": " + junitText(masker, j.Reason)}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	doc := junitSuites{Name: res.Name, Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped,
		Time: suite.Time, Suites: []junitSuite{suite}}
	data, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	data = append([]byte(xml.Header), append(data, '\n')...)
	if err := writeOutputFile(path, data, 0o644); err != nil {
		// Named as the user named it, not by the temporary file beside it.
		return fmt.Errorf("write the JUnit report: write %s: %w", path, osErr(err))
	}
	return nil
}

// junitText is s as XML can hold it (xmlText), masked before and after:
// removing the control sequences a step printed inside a secret
// ("tok\x1b[1mSECRET\x1b[0m1234") would put the secret back together.
func junitText(masker *actions.Masker, s string) string {
	return masker.Mask(xmlText(masker.Mask(s)))
}

// ansiCSI is a terminal control sequence (colours, cursor moves): what
// test tools print most of the text XML cannot hold.
var ansiCSI = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]")

// xmlText is text as XML 1.0 can hold it, CDATA too: terminal control
// sequences removed, then every other character XML has no place for (a
// control character, a byte that is not UTF-8) replaced by U+FFFD. A
// report with one of them is rejected whole by the CI that reads it.
func xmlText(s string) string {
	s = ansiCSI.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
			return utf8.RuneError
		}
		return r
	}, s)
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// writeReports writes the reports CI systems read: --junit, and on GitHub
// Actions the job summary ($GITHUB_STEP_SUMMARY).
func (a *app) writeReports(f *runFlags, res *actions.Result, masker *actions.Masker) error {
	if f.junit != "" {
		if err := writeJUnit(f.junit, res, masker); err != nil {
			return infraError(err)
		}
	}
	if a.getenv("GITHUB_ACTIONS") == "true" {
		if path := a.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			if err := appendStepSummary(path, res, masker); err != nil {
				fmt.Fprintf(a.stderr, "warning: GitHub step summary not written: %v\n", err)
			}
		}
	}
	return nil
}
