package dag_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nixflow/nixflow/dag"
)

// event is a visit starting or finishing.
type event struct {
	Node  string
	Start bool
}

// recorder logs visit events in the order they happen.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(node string, start bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{node, start})
}

// starts returns the nodes in the order their visits started.
func (r *recorder) starts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Start {
			out = append(out, e.Node)
		}
	}
	return out
}

// positions returns, for each node, the index of its start and finish events,
// failing the test unless every node of g started and finished exactly once.
func (r *recorder) positions(t *testing.T, g *dag.Graph) (start, finish map[string]int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	start, finish = make(map[string]int), make(map[string]int)
	for i, e := range r.events {
		m := finish
		if e.Start {
			m = start
		}
		if _, dup := m[e.Node]; dup {
			t.Errorf("%+v happened twice", e)
		}
		m[e.Node] = i
	}
	for _, n := range g.Nodes() {
		s, started := start[n]
		f, finished := finish[n]
		if !started || !finished || f < s {
			t.Errorf("node %q: start at %d (%v), finish at %d (%v)", n, s, started, f, finished)
		}
	}
	if len(r.events) != 2*g.Len() {
		t.Errorf("%d events, want %d", len(r.events), 2*g.Len())
	}
	return start, finish
}

// peak tracks the number of visits running at once and its maximum.
type peak struct {
	cur, max atomic.Int64
}

func (p *peak) enter() int64 {
	c := p.cur.Add(1)
	for {
		m := p.max.Load()
		if c <= m || p.max.CompareAndSwap(m, c) {
			return c
		}
	}
}

func (p *peak) leave() { p.cur.Add(-1) }

// TestWalkOrder checks on random graphs that every node is visited exactly
// once, never before its dependencies have returned (or, with Levels, before
// the whole previous level has), and that MaxParallel is never exceeded.
func TestWalkOrder(t *testing.T) {
	tests := []struct {
		maxParallel int
		levels      bool
	}{
		{0, false}, {1, false}, {2, false}, {5, false}, {-1, false},
		{0, true}, {1, true}, {3, true},
	}
	for seed := range uint64(3) {
		nodes, deps := randomDAG(seed, 300, 4)
		g := mustNew(t, nodes, deps)
		level := make(map[string]int)
		for l, nodes := range g.Levels() {
			for _, n := range nodes {
				level[n] = l
			}
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("seed %d max %d levels %v", seed, tt.maxParallel, tt.levels), func(t *testing.T) {
				var rec recorder
				var p peak
				g.Walk(context.Background(), dag.WalkOptions{MaxParallel: tt.maxParallel, Levels: tt.levels}, func(_ context.Context, n string) {
					p.enter()
					rec.add(n, true)
					rec.add(n, false)
					p.leave()
				})
				start, finish := rec.positions(t, g)
				for _, n := range nodes {
					for _, d := range g.Deps(n) {
						if start[n] < finish[d] {
							t.Errorf("%q started (event %d) before its dependency %q finished (event %d)", n, start[n], d, finish[d])
						}
					}
				}
				if tt.levels {
					for _, n := range nodes {
						for _, m := range nodes {
							if level[m] < level[n] && start[n] < finish[m] {
								t.Errorf("%q on level %d started before %q on level %d finished", n, level[n], m, level[m])
							}
						}
					}
				}
				if tt.maxParallel > 0 && p.max.Load() > int64(tt.maxParallel) {
					t.Errorf("%d visits ran at once, MaxParallel is %d", p.max.Load(), tt.maxParallel)
				}
			})
		}
	}
}

// TestWalkNoLevelBarrier checks that a node starts as soon as its own
// dependencies are done, while an unrelated node of an earlier level is still
// running. The slow node only returns once that happened, so an
// implementation with level barriers deadlocks here (and go test's -timeout
// reports it) instead of passing by luck.
func TestWalkNoLevelBarrier(t *testing.T) {
	tests := []struct {
		name        string
		nodes       []string
		deps        map[string][]string
		slow, last  string // slow runs until last has started
		maxParallel int
	}{
		{
			name:  "one step",
			nodes: []string{"a", "b", "c"},
			deps:  map[string][]string{"c": {"b"}},
			slow:  "a", last: "c",
		},
		{
			name:        "one step, two at a time",
			nodes:       []string{"a", "b", "c"},
			deps:        map[string][]string{"c": {"b"}},
			slow:        "a",
			last:        "c",
			maxParallel: 2,
		},
		{
			name:  "chain past several levels",
			nodes: []string{"a", "b", "c", "d", "e"},
			deps:  map[string][]string{"c": {"b"}, "d": {"c"}, "e": {"d", "b"}},
			slow:  "a", last: "e",
		},
		{
			name:        "slow node on a higher level",
			nodes:       []string{"a", "b", "c", "d", "x"},
			deps:        map[string][]string{"x": {"a"}, "c": {"b"}, "d": {"c"}},
			slow:        "x",
			last:        "d",
			maxParallel: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.deps)
			lastStarted := make(chan struct{})
			var rec recorder
			g.Walk(context.Background(), dag.WalkOptions{MaxParallel: tt.maxParallel}, func(_ context.Context, n string) {
				rec.add(n, true)
				switch n {
				case tt.slow:
					<-lastStarted
				case tt.last:
					close(lastStarted)
				}
				rec.add(n, false)
			})
			start, finish := rec.positions(t, g)
			if start[tt.last] > finish[tt.slow] {
				t.Errorf("%q started after %q finished", tt.last, tt.slow)
			}
		})
	}
}

// TestWalkMaxParallel checks that the cap is reached and never exceeded. Each
// visit waits until the expected number of visits run at once, so a walk that
// never reaches the cap deadlocks (reported by go test's -timeout) rather than
// passing by luck.
func TestWalkMaxParallel(t *testing.T) {
	const width = 20
	tests := []struct {
		name        string
		maxParallel int
		levels      bool
		want        int64
	}{
		{"one", 1, false, 1},
		{"three", 3, false, 3},
		{"eight, levels", 8, true, 8},
		{"no cap", 0, false, width},
		{"negative is no cap", -1, false, width},
		{"no cap, levels", 0, true, width},
		{"cap above node count", 50, false, width},
	}
	nodes := make([]string, width)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("n%02d", i)
	}
	g := mustNew(t, nodes, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p peak
			var visits atomic.Int64
			reached := make(chan struct{})
			var once sync.Once
			g.Walk(context.Background(), dag.WalkOptions{MaxParallel: tt.maxParallel, Levels: tt.levels}, func(context.Context, string) {
				visits.Add(1)
				if p.enter() == tt.want {
					once.Do(func() { close(reached) })
				}
				<-reached
				// Not needed for correctness: yielding before leaving gives
				// a walk that exceeds the cap more chance to show it.
				runtime.Gosched()
				p.leave()
			})
			if got := p.max.Load(); got != tt.want {
				t.Errorf("at most %d visits ran at once, want %d", got, tt.want)
			}
			if got := visits.Load(); got != width {
				t.Errorf("%d visits, want %d", got, width)
			}
		})
	}
}

// TestWalkLevels checks that with Levels no node starts while a node of an
// earlier level runs, even if its own dependencies are done.
func TestWalkLevels(t *testing.T) {
	g := mustNew(t, []string{"a", "b", "c", "d"}, map[string][]string{"c": {"b"}, "d": {"c"}})
	for _, maxParallel := range []int{0, 1, 2} {
		t.Run(fmt.Sprint("max ", maxParallel), func(t *testing.T) {
			var rec recorder
			g.Walk(context.Background(), dag.WalkOptions{MaxParallel: maxParallel, Levels: true}, func(_ context.Context, n string) {
				rec.add(n, true)
				rec.add(n, false)
			})
			start, finish := rec.positions(t, g)
			for _, n := range []string{"c", "d"} {
				for _, before := range []string{"a", "b"} {
					if start[n] < finish[before] {
						t.Errorf("%q started before %q finished", n, before)
					}
				}
			}
			if start["d"] < finish["c"] {
				t.Errorf("%q started before %q finished", "d", "c")
			}
		})
	}
}

// TestWalkCriticalPath checks, with one visit at a time, that the ready node
// with the longest chain of dependents behind it goes first, ties going to
// topological order.
func TestWalkCriticalPath(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []string
		deps   map[string][]string
		levels bool
		want   []string
	}{
		{
			name:  "longer chain first",
			nodes: []string{"a", "z", "b1", "b2"},
			deps:  map[string][]string{"b1": {"z"}, "b2": {"b1"}},
			want:  []string{"z", "b1", "a", "b2"},
		},
		{
			name:  "ties by name",
			nodes: []string{"c", "a", "b"},
			want:  []string{"a", "b", "c"},
		},
		{
			name:  "ties by topological order",
			nodes: []string{"a", "b", "y", "z"},
			deps:  map[string][]string{"a": {"z"}, "b": {"y"}},
			want:  []string{"y", "z", "b", "a"},
		},
		{
			name:  "pipeline",
			nodes: pipelineNodes,
			deps:  pipelineDeps,
			want:  []string{"build", "lint", "package", "test", "docs", "deploy"},
		},
		{
			name:   "within a level",
			nodes:  []string{"a", "y", "z", "b1", "b2", "c"},
			deps:   map[string][]string{"b1": {"z"}, "b2": {"b1"}, "c": {"a"}},
			levels: true,
			want:   []string{"z", "a", "y", "b1", "c", "b2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.deps)
			var rec recorder
			g.Walk(context.Background(), dag.WalkOptions{MaxParallel: 1, Levels: tt.levels}, func(_ context.Context, n string) {
				rec.add(n, true)
			})
			if diff := cmp.Diff(tt.want, rec.starts()); diff != "" {
				t.Errorf("start order mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWalkHappensBefore lets each visit read its dependencies' results
// without locking; the race detector checks that Walk orders the accesses.
func TestWalkHappensBefore(t *testing.T) {
	nodes, deps := randomDAG(3, 500, 4)
	g := mustNew(t, nodes, deps)
	index := make(map[string]int)
	for i, n := range nodes {
		index[n] = i
	}
	depth := make([]int, len(nodes)) // written by each visit, no lock
	g.Walk(context.Background(), dag.WalkOptions{}, func(_ context.Context, n string) {
		d := 0
		for _, dep := range g.Deps(n) {
			d = max(d, depth[index[dep]]+1)
		}
		depth[index[n]] = d
	})
	got := make(map[string]int)
	for i, n := range nodes {
		got[n] = depth[i]
	}
	want := make(map[string]int)
	for l, level := range g.Levels() {
		for _, n := range level {
			want[n] = l
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("depths mismatch (-want +got):\n%s", diff)
	}
}

func TestWalkContext(t *testing.T) {
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel() // Walk does not stop for a done context; visit decides.
	g := mustNew(t, pipelineNodes, pipelineDeps)
	var visits atomic.Int64
	g.Walk(ctx, dag.WalkOptions{}, func(ctx context.Context, n string) {
		visits.Add(1)
		if got := ctx.Value(key{}); got != "v" {
			t.Errorf("visit(%q): context value = %v, want %q", n, got, "v")
		}
	})
	if got := visits.Load(); got != int64(g.Len()) {
		t.Errorf("%d visits, want %d", got, g.Len())
	}
}

func TestWalkEmpty(t *testing.T) {
	for _, g := range []*dag.Graph{mustNew(t, nil, nil), new(dag.Graph)} {
		g.Walk(context.Background(), dag.WalkOptions{}, func(_ context.Context, n string) {
			t.Errorf("visit(%q) on an empty graph", n)
		})
	}
}

// TestWalkConcurrent runs several walks of one graph at the same time.
func TestWalkConcurrent(t *testing.T) {
	nodes, deps := randomDAG(5, 200, 4)
	g := mustNew(t, nodes, deps)
	var wg sync.WaitGroup
	counts := make([]atomic.Int64, 4)
	for i := range counts {
		wg.Go(func() {
			g.Walk(context.Background(), dag.WalkOptions{MaxParallel: i}, func(context.Context, string) {
				counts[i].Add(1)
			})
		})
	}
	wg.Wait()
	for i := range counts {
		if got := counts[i].Load(); got != int64(len(nodes)) {
			t.Errorf("walk %d: %d visits, want %d", i, got, len(nodes))
		}
	}
}
