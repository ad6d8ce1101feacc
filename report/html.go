package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nixflow/nixflow/timing"
)

//go:embed report.html.tmpl
var pageTemplate string

// page is the report's template, parsed when a report is first written:
// at start-up it would cost every nixflow command half a millisecond.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"dur": timing.Human,
		"add": func(a, b int) int { return a + b },
	}).Parse(pageTemplate))
})

// rowsPerJob is the most jobs drawn one row each on the timeline; larger
// runs are packed into lanes, so that the page stays usable.
const rowsPerJob = 80

// familyNodeMin is the smallest matrix family drawn as one node of the
// job graph; smaller ones are drawn job by job, side by side.
const familyNodeMin = 7

// view is what the template draws: the model with every position
// computed, so that the page needs no script to show it.
type view struct {
	*Run
	Total    time.Duration
	Ticks    []tick
	PerJob   bool
	Rows     []row
	Graph    graph
	Counts   []count
	Critical []*jobView
	JobViews []*jobView
	// JobChunks are JobViews in pieces of chunkRows, for the table of a
	// large run: each piece a table of fixed layout in a box the browser
	// lays out only when it comes into view (content-visibility, which
	// table rows themselves cannot have).
	JobChunks [][]*jobView
	StartedAt string
	Failed    []*jobView
	// MoreFailed counts the failed jobs beyond the first maxFailures.
	MoreFailed int
}

// chunkRows is how many jobs each piece of a large run's table holds.
// Laying out a 1,000-row table in one piece took most of the page's
// rendering time (docs/performance.md).
const chunkRows = 50

// maxFailures is how many failed jobs get their last lines shown; the
// table lists them all.
const maxFailures = 20

type count struct {
	Result string
	N      int
}

type tick struct {
	Left  template.CSS
	Label string
}

type row struct {
	Label *jobView // per-job rows only
	Bars  []*jobView
}

type jobView struct {
	*Job
	ID    int
	Class string
	// Boxes on the timeline: the queued time, the job, its segments.
	Queued   template.CSS
	Bar      template.CSS
	Segments []segment
	Duration time.Duration
	Wait     time.Duration
	Title    string
	StepRows []stepRow
	// Label is the name drawn inside a packed lane's bar, when it fits.
	Label string
}

type segment struct {
	Style template.CSS
	Class string
	Title string
}

type stepRow struct {
	*Step
	Duration time.Duration
	Waited   time.Duration
}

type graph struct {
	Width, Height int
	Nodes         []node
	Edges         []edge
}

type node struct {
	X, Y, W, H int
	Label      string
	Title      string
	Class      string
	Href       string
	IDs        string // the jobs it stands for, for highlighting
	Critical   bool
}

type edge struct {
	D        string
	Critical bool
}

// WriteHTML writes the model as one self-contained HTML page: styles and
// script inline, nothing fetched. The timeline, graph and tables are drawn
// by the server side; the script only links them on hover.
func WriteHTML(w io.Writer, r *Run) error {
	return page().Execute(w, newView(r))
}

func newView(r *Run) *view {
	v := &view{Run: r, Total: r.Duration, PerJob: len(r.Jobs) <= rowsPerJob}
	if !r.Started.IsZero() {
		v.StartedAt = r.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for _, j := range r.Jobs {
		v.Total = max(v.Total, j.End)
	}
	v.Total = max(v.Total, time.Millisecond)
	v.Ticks = ticks(v.Total)
	byName := map[string]*jobView{}
	counts := map[string]int{}
	for i, j := range r.Jobs {
		jv := newJobView(i, j, v.Total)
		v.JobViews = append(v.JobViews, jv)
		byName[j.Name] = jv
		counts[j.Result]++
		if j.Result == Failure || j.Result == Allowed || j.Result == Incomplete {
			if len(v.Failed) < maxFailures {
				v.Failed = append(v.Failed, jv)
			} else {
				v.MoreFailed++
			}
		}
	}
	for _, res := range []string{Success, Allowed, Failure, Cancelled, Skipped, Incomplete, NotRun} {
		if counts[res] > 0 {
			v.Counts = append(v.Counts, count{res, counts[res]})
		}
	}
	for _, n := range r.CriticalPath {
		if jv := byName[n]; jv != nil {
			v.Critical = append(v.Critical, jv)
		}
	}
	if !v.PerJob {
		for i := 0; i < len(v.JobViews); i += chunkRows {
			v.JobChunks = append(v.JobChunks, v.JobViews[i:min(i+chunkRows, len(v.JobViews))])
		}
	}
	v.Rows = rows(v)
	v.Graph = layoutGraph(r, byName)
	return v
}

// newJobView places job i on a time axis of length total: its boxes as
// percentages of the axis.
func newJobView(i int, j *Job, total time.Duration) *jobView {
	pct := func(d time.Duration) float64 { return float64(d) / float64(total) * 100 }
	box := func(from, to time.Duration) template.CSS {
		return template.CSS(fmt.Sprintf("left:%.3f%%;width:%.3f%%", pct(from), pct(max(to-from, 0))))
	}
	jv := &jobView{Job: j, ID: i, Class: j.Result, Duration: j.End - j.Start, Wait: j.Start - j.Ready}
	if jv.Wait < time.Millisecond {
		jv.Wait = 0 // scheduling noise, not a wait
	}
	if j.Critical {
		jv.Class += " critical"
	}
	if jv.Wait > 0 {
		jv.Queued = box(j.Ready, j.Start)
	}
	jv.Bar = box(j.Start, j.End)
	// About 150 characters fit across the timeline.
	if pct(j.End-j.Start)*1.5 >= float64(len(j.Name)+1) {
		jv.Label = j.Name
	}
	jv.Title = fmt.Sprintf("%s: %s, %s", j.Name, j.Result, timing.Human(jv.Duration))
	if jv.Wait > 0 {
		jv.Title += fmt.Sprintf(", queued %s", timing.Human(jv.Wait))
	}
	if j.Location != "" {
		jv.Title += ", on " + j.Location
	}
	for _, s := range j.Steps {
		sr := stepRow{Step: s}
		for _, a := range s.Attempts {
			sr.Duration += a.End - a.Start
			title := s.Name
			if len(s.Attempts) > 1 {
				title += fmt.Sprintf(" (attempt %d)", a.N)
			}
			jv.Segments = append(jv.Segments, segment{Style: box(a.Start, a.End), Class: "seg " + a.Result,
				Title: fmt.Sprintf("%s: %s, %s", title, a.Result, timing.Human(a.End-a.Start))})
			if a.WaitEnd > a.End {
				sr.Waited += a.WaitEnd - a.End
				jv.Segments = append(jv.Segments, segment{Style: box(a.End, a.WaitEnd), Class: "seg wait",
					Title: fmt.Sprintf("%s: retry wait, %s", s.Name, timing.Human(a.WaitEnd-a.End))})
			}
		}
		jv.StepRows = append(jv.StepRows, sr)
	}
	if end, ok := j.setupEnd(); ok {
		jv.Segments = append([]segment{{Style: box(j.Setup, end), Class: "seg setup",
			Title: fmt.Sprintf("%s: setup (deps, workspace, inputs), %s", j.Name, timing.Human(end-j.Setup))}}, jv.Segments...)
	}
	return jv
}

// rows orders the timeline: one job a row by start time, or jobs packed
// into lanes.
func rows(v *view) []row {
	if v.PerJob {
		// By start, a matrix family's jobs together from its first start.
		begin := func(jv *jobView) time.Duration { return min(jv.Ready, jv.Start) }
		group := map[string]time.Duration{}
		for _, jv := range v.JobViews {
			if g, ok := group[jv.Family]; jv.Family != "" && (!ok || begin(jv) < g) {
				group[jv.Family] = begin(jv)
			}
		}
		key := func(jv *jobView) (time.Duration, string) {
			if jv.Family != "" {
				return group[jv.Family], jv.Family
			}
			return begin(jv), jv.Name
		}
		order := append([]*jobView(nil), v.JobViews...)
		sort.SliceStable(order, func(a, b int) bool {
			ta, na := key(order[a])
			tb, nb := key(order[b])
			if ta != tb {
				return ta < tb
			}
			if na != nb {
				return na < nb
			}
			return begin(order[a]) < begin(order[b])
		})
		rs := make([]row, len(order))
		for i, jv := range order {
			rs[i] = row{Label: jv, Bars: []*jobView{jv}}
		}
		return rs
	}
	rs := make([]row, v.Lanes)
	for _, jv := range v.JobViews {
		rs[jv.Lane].Bars = append(rs[jv.Lane].Bars, jv)
	}
	return rs
}

// ticks puts five to ten labelled marks on the time axis, at a round step.
func ticks(total time.Duration) []tick {
	var steps []time.Duration
	for _, m := range []time.Duration{1, 2, 5, 10, 20, 50, 100, 200, 250, 500} {
		steps = append(steps, m*time.Millisecond)
	}
	for _, base := range []time.Duration{time.Second, time.Minute} {
		for _, m := range []time.Duration{1, 2, 5, 10, 15, 20, 30} {
			steps = append(steps, base*m)
		}
	}
	for _, m := range []time.Duration{1, 2, 3, 6, 12, 24, 48} {
		steps = append(steps, m*time.Hour)
	}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if total/s <= 8 {
			step = s
			break
		}
	}
	var ts []tick
	for t := time.Duration(0); t <= total; t += step {
		ts = append(ts, tick{Left: template.CSS(fmt.Sprintf("left:%.3f%%", float64(t)/float64(total)*100)), Label: timing.Human(t)})
		if t > total-step {
			break // the next would pass the largest duration
		}
	}
	return ts
}

const (
	nodeW, nodeH = 132, 26
	gapX, gapY   = 36, 10
	pad          = 8
)

// graphNode is a node of the job graph being laid out: a job, or a
// matrix family.
type graphNode struct {
	node
	level int
	pos   float64
	needs []string
	jobs  []*jobView
}

func (n *graphNode) has(job string) bool {
	for _, jv := range n.jobs {
		if jv.Name == job {
			return true
		}
	}
	return false
}

// layoutGraph places the job graph in columns by level, each column
// ordered by where the jobs it needs stand, so that edges cross little.
// Large matrix families are one node each.
func layoutGraph(r *Run, byName map[string]*jobView) graph {
	nodes, nodeOf := graphNodes(r, byName)
	g := placeColumns(nodes, nodeOf)
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, n.finish())
	}
	seen := map[[2]*graphNode]bool{}
	for _, n := range nodes {
		for _, need := range n.needs {
			d := nodeOf[need]
			if d == nil || seen[[2]*graphNode{d, n}] {
				continue
			}
			seen[[2]*graphNode{d, n}] = true
			x1, y1 := d.X+d.W, d.Y+d.H/2
			x2, y2 := n.X, n.Y+n.H/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, edge{
				D:        fmt.Sprintf("M%d %dC%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2, y2),
				Critical: d.Critical && n.Critical && onPath(r.CriticalPath, d, n),
			})
		}
	}
	return g
}

// graphNodes makes a node per job, or per matrix family of at least
// familyNodeMin jobs, and maps every job to its node.
func graphNodes(r *Run, byName map[string]*jobView) ([]*graphNode, map[string]*graphNode) {
	var nodes []*graphNode
	nodeOf := map[string]*graphNode{}
	famSize := map[string]int{}
	for _, f := range r.Families {
		famSize[f.Name] = len(f.Jobs)
	}
	for _, j := range r.Jobs {
		jv := byName[j.Name]
		key, label := j.Name, j.Name
		if j.Family != "" && famSize[j.Family] >= familyNodeMin {
			key, label = "\x00"+j.Family, j.Family
		}
		if n := nodeOf[key]; n != nil {
			n.jobs = append(n.jobs, jv)
			nodeOf[j.Name] = n
			continue
		}
		n := &graphNode{level: j.Level, needs: j.Needs, jobs: []*jobView{jv}}
		n.Label = label
		nodeOf[key], nodeOf[j.Name] = n, n
		nodes = append(nodes, n)
	}
	return nodes, nodeOf
}

// placeColumns gives each node its place: its level's column, in the
// order of the mean position of the nodes it needs.
func placeColumns(nodes []*graphNode, nodeOf map[string]*graphNode) graph {
	levels := map[int][]*graphNode{}
	maxLevel := 0
	for _, n := range nodes {
		levels[n.level] = append(levels[n.level], n)
		maxLevel = max(maxLevel, n.level)
	}
	height := 0
	for l := 0; l <= maxLevel; l++ {
		col := levels[l]
		for _, n := range col {
			sum, k := 0.0, 0
			for _, need := range n.needs {
				if d := nodeOf[need]; d != nil && d.level < l {
					sum += d.pos
					k++
				}
			}
			if k > 0 {
				n.pos = sum / float64(k)
			}
		}
		sort.SliceStable(col, func(a, b int) bool { return col[a].pos < col[b].pos })
		for i, n := range col {
			n.pos = float64(i)
			n.X, n.Y, n.W, n.H = pad+l*(nodeW+gapX), pad+i*(nodeH+gapY), nodeW, nodeH
			height = max(height, n.Y+nodeH+pad)
		}
	}
	return graph{Width: pad*2 + (maxLevel+1)*(nodeW+gapX) - gapX, Height: max(height, nodeH+2*pad)}
}

// finish sets what the node shows: its worst result as its colour, a
// count for a family, the jobs it stands for.
func (n *graphNode) finish() node {
	worst, ids := Success, make([]string, 0, len(n.jobs))
	tally := map[string]int{}
	for _, jv := range n.jobs {
		ids = append(ids, strconv.Itoa(jv.ID))
		tally[jv.Result]++
		if rank(jv.Result) > rank(worst) {
			worst = jv.Result
		}
		n.Critical = n.Critical || jv.Critical
	}
	n.Class, n.IDs, n.Href = worst, strings.Join(ids, " "), "#job-"+ids[0]
	n.Title = n.jobs[0].Title
	if len(n.jobs) > 1 {
		var parts []string
		for _, res := range []string{Success, Allowed, Failure, Cancelled, Skipped, Incomplete, NotRun} {
			if tally[res] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", tally[res], res))
			}
		}
		n.Title = fmt.Sprintf("%s: %d jobs (%s)", n.Label, len(n.jobs), strings.Join(parts, ", "))
		n.Label = fmt.Sprintf("%s ×%d", n.Label, len(n.jobs))
	}
	if n.Critical {
		n.Class += " critical"
	}
	if len([]rune(n.Label)) > 20 {
		n.Label = string([]rune(n.Label)[:19]) + "…"
	}
	return n.node
}

// onPath reports whether the edge from a to b joins two consecutive jobs
// of the critical path.
func onPath(path []string, a, b *graphNode) bool {
	for i := 1; i < len(path); i++ {
		if a.has(path[i-1]) && b.has(path[i]) {
			return true
		}
	}
	return false
}

// rank orders results by how much they need attention.
func rank(result string) int {
	switch result {
	case Failure:
		return 6
	case Incomplete:
		return 5
	case Allowed:
		return 4
	case Cancelled:
		return 3
	case NotRun:
		return 2
	case Skipped:
		return 1
	}
	return 0
}
