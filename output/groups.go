package output

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nixflow/nixflow/event"
)

// Groups is the syntax of a hosted CI's collapsible log sections.
type Groups string

// The CI services whose log groups nixflow writes.
const (
	GroupsNone      Groups = "none"
	GroupsGitHub    Groups = "github"
	GroupsGitLab    Groups = "gitlab"
	GroupsBuildkite Groups = "buildkite"
)

// DetectGroups names the CI nixflow runs in, from the variables each one
// sets (getenv), or GroupsNone.
func DetectGroups(getenv func(string) string) Groups {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return GroupsGitHub
	case getenv("GITLAB_CI") == "true":
		return GroupsGitLab
	case getenv("BUILDKITE") == "true":
		return GroupsBuildkite
	}
	return GroupsNone
}

// JobOutcome is how a job ended, as its section's title tells.
type JobOutcome struct {
	Job     string
	Status  event.Status
	Allowed bool
	Reason  string
}

// WriteGroups replays, at the end of a run, each job's log in a collapsible
// section of the CI's own syntax: the live output interleaves jobs that run
// at once, so sections are made from the per-job logs (masked already).
// A failed job's section is open (Buildkite) or annotated (GitHub).
func WriteGroups(w io.Writer, g Groups, runDir string, jobs []JobOutcome) {
	writeGroups(w, g, runDir, jobs, time.Now)
}

func writeGroups(w io.Writer, g Groups, runDir string, jobs []JobOutcome, now func() time.Time) {
	if g == GroupsNone {
		return
	}
	for _, j := range jobs {
		title := fmt.Sprintf("%s (%s)", j.Job, j.Status)
		failed := j.Status == event.StatusFailure && !j.Allowed
		if j.Status == event.StatusFailure && j.Allowed {
			title = j.Job + " (failed, allowed)"
		}
		id := "nixflow_" + sectionName(j.Job)
		switch g {
		case GroupsGitHub:
			fmt.Fprintf(w, "::group::%s\n", title)
		case GroupsGitLab:
			fmt.Fprintf(w, "\x1b[0Ksection_start:%d:%s[collapsed=true]\r\x1b[0K%s\n", now().Unix(), id, title)
		case GroupsBuildkite:
			mark := "---"
			if failed {
				mark = "+++"
			}
			fmt.Fprintf(w, "%s %s\n", mark, title)
		}
		copyLines(w, LogPath(runDir, j.Job))
		switch g {
		case GroupsGitHub:
			fmt.Fprintln(w, "::endgroup::")
			if failed {
				fmt.Fprintf(w, "::error title=nixflow job %s failed::%s\n", githubEscape(j.Job), githubEscape(j.Reason))
			}
		case GroupsGitLab:
			fmt.Fprintf(w, "\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", now().Unix(), id)
		}
	}
}

// copyLines copies a job's log, if it has one, line by line.
func copyLines(w io.Writer, path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(w, "(no log: the job did not run)")
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	// Each line starts with its timestamp, so a workflow command a step
	// printed ("::warning::...") is not taken as one a second time.
	for sc.Scan() {
		fmt.Fprintln(w, sc.Text())
	}
}

// sectionName keeps the characters GitLab allows in a section name.
func sectionName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// githubEscape escapes a workflow command's data as GitHub requires.
func githubEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
