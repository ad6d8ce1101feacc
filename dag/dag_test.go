package dag_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nixflow/nixflow/dag"
)

// pipeline is a small CI-like graph used by several tests.
var (
	pipelineNodes = []string{"deploy", "docs", "lint", "package", "test", "build"}
	pipelineDeps  = map[string][]string{
		"test":    {"build"},
		"package": {"build"},
		"deploy":  {"test", "package", "lint"},
	}
)

func mustNew(t testing.TB, nodes []string, deps map[string][]string) *dag.Graph {
	t.Helper()
	g, err := dag.New(nodes, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestNodes(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  []string
	}{
		{name: "empty", want: nil},
		{name: "single", nodes: []string{"a"}, want: []string{"a"}},
		{
			name:  "independent nodes sorted by name",
			nodes: []string{"c", "a", "b"},
			want:  []string{"a", "b", "c"},
		},
		{
			name:  "chain listed backwards",
			nodes: []string{"c", "b", "a"},
			deps:  map[string][]string{"a": {"b"}, "b": {"c"}},
			want:  []string{"c", "b", "a"},
		},
		{
			name:  "diamond",
			nodes: []string{"d", "c", "b", "a"},
			deps:  map[string][]string{"d": {"b", "c"}, "b": {"a"}, "c": {"a"}},
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name:  "smallest ready name comes next",
			nodes: []string{"a", "b", "y", "z"},
			deps:  map[string][]string{"a": {"z"}, "b": {"y"}},
			want:  []string{"y", "b", "z", "a"},
		},
		{
			name:  "repeated dependency counts once",
			nodes: []string{"a", "b"},
			deps:  map[string][]string{"b": {"a", "a"}},
			want:  []string{"a", "b"},
		},
		{
			name:  "pipeline",
			nodes: pipelineNodes,
			deps:  pipelineDeps,
			want:  []string{"build", "docs", "lint", "package", "test", "deploy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.deps)
			if diff := cmp.Diff(tt.want, g.Nodes()); diff != "" {
				t.Errorf("Nodes() mismatch (-want +got):\n%s", diff)
			}
			if got := g.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
		})
	}
}

// TestRandomAgainstReference compares Nodes, Levels and Height on random
// graphs with slow but obviously correct implementations.
func TestRandomAgainstReference(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			nodes, deps := randomDAG(seed, 150, 4)
			g := mustNew(t, nodes, deps)
			if diff := cmp.Diff(refOrder(nodes, deps), g.Nodes()); diff != "" {
				t.Errorf("Nodes() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(refLevels(nodes, deps), g.Levels()); diff != "" {
				t.Errorf("Levels() mismatch (-want +got):\n%s", diff)
			}
			got := make(map[string]int)
			for _, n := range nodes {
				got[n] = g.Height(n)
			}
			if diff := cmp.Diff(refHeights(nodes, deps), got); diff != "" {
				t.Errorf("Height mismatch (-want +got):\n%s", diff)
			}
			// Every node comes after its dependencies.
			pos := make(map[string]int)
			for i, n := range g.Nodes() {
				pos[n] = i
			}
			for _, n := range nodes {
				for _, d := range deps[n] {
					if pos[d] >= pos[n] {
						t.Errorf("%q at %d not after its dependency %q at %d", n, pos[n], d, pos[d])
					}
				}
			}
		})
	}
}

// TestDeterminism checks that the order in which nodes and dependencies are
// listed does not change any result, including which cycle is reported.
func TestDeterminism(t *testing.T) {
	shuffled := func(r *rand.Rand, nodes []string, deps map[string][]string) ([]string, map[string][]string) {
		nodes = slices.Clone(nodes)
		r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
		out := make(map[string][]string)
		for n, ds := range deps {
			ds = slices.Clone(ds)
			r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
			out[n] = ds
		}
		return nodes, out
	}
	type result struct {
		Nodes  []string
		Levels [][]string
		Err    string
	}
	run := func(nodes []string, deps map[string][]string) result {
		g, err := dag.New(nodes, deps)
		if err != nil {
			return result{Err: err.Error()}
		}
		return result{Nodes: g.Nodes(), Levels: g.Levels()}
	}

	acyclicNodes, acyclicDeps := randomDAG(1, 200, 4)
	cyclicNodes, cyclicDeps := randomDAG(2, 200, 4)
	// Close several cycles among the random edges.
	for i, n := range cyclicNodes[:40] {
		cyclicDeps[n] = append(cyclicDeps[n], cyclicNodes[(i*7+3)%len(cyclicNodes)])
	}
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
	}{
		{"acyclic", acyclicNodes, acyclicDeps},
		{"cyclic", cyclicNodes, cyclicDeps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := run(tt.nodes, tt.deps)
			r := rand.New(rand.NewPCG(42, 0))
			for range 20 {
				got := run(shuffled(r, tt.nodes, tt.deps))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("result depends on input order (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  [][]string
	}{
		{name: "empty", want: nil},
		{name: "independent", nodes: []string{"b", "a"}, want: [][]string{{"a", "b"}}},
		{
			name:  "level is one more than the deepest dependency",
			nodes: []string{"a", "b", "c", "d"},
			deps:  map[string][]string{"b": {"a"}, "c": {"b"}, "d": {"a", "c"}},
			want:  [][]string{{"a"}, {"b"}, {"c"}, {"d"}},
		},
		{
			name:  "each level sorted by name",
			nodes: []string{"a", "b", "y", "z"},
			deps:  map[string][]string{"a": {"z"}, "b": {"y"}},
			want:  [][]string{{"y", "z"}, {"a", "b"}},
		},
		{
			name:  "pipeline",
			nodes: pipelineNodes,
			deps:  pipelineDeps,
			want:  [][]string{{"build", "docs", "lint"}, {"package", "test"}, {"deploy"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.deps)
			if diff := cmp.Diff(tt.want, g.Levels()); diff != "" {
				t.Errorf("Levels() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCycle(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  []string
	}{
		{
			name:  "two nodes",
			nodes: []string{"build", "test"},
			deps:  map[string][]string{"build": {"test"}, "test": {"build"}},
			want:  []string{"build", "test", "build"},
		},
		{
			name:  "self loop",
			nodes: []string{"a"},
			deps:  map[string][]string{"a": {"a"}},
			want:  []string{"a", "a"},
		},
		{
			name:  "self loop among other nodes",
			nodes: []string{"a", "b", "c"},
			deps:  map[string][]string{"b": {"a", "b"}, "c": {"b"}},
			want:  []string{"b", "b"},
		},
		{
			name:  "cycle not reachable from the first node",
			nodes: []string{"a", "b", "c", "d"},
			deps:  map[string][]string{"a": {"b"}, "c": {"d"}, "d": {"c"}},
			want:  []string{"c", "d", "c"},
		},
		{
			name:  "node depending on a cycle is not on it",
			nodes: []string{"a", "x", "y"},
			deps:  map[string][]string{"a": {"x"}, "x": {"y"}, "y": {"x"}},
			want:  []string{"x", "y", "x"},
		},
		{
			name:  "cycle in a larger graph",
			nodes: []string{"build", "deploy", "docs", "lint", "package", "test"},
			deps: map[string][]string{
				"test":    {"build", "deploy"},
				"package": {"build"},
				"deploy":  {"test", "package", "lint"},
				"docs":    {"deploy"},
			},
			want: []string{"deploy", "test", "deploy"},
		},
		{
			name:  "several cycles: start at the smallest node on one",
			nodes: []string{"a", "m", "n", "c", "d", "e"},
			deps:  map[string][]string{"a": {"m"}, "m": {"n"}, "n": {"m"}, "c": {"d"}, "d": {"e"}, "e": {"c"}},
			want:  []string{"c", "d", "e", "c"},
		},
		{
			name:  "dependencies followed in name order",
			nodes: []string{"a", "b", "c"},
			deps:  map[string][]string{"a": {"c", "b"}, "b": {"a"}, "c": {"a"}},
			want:  []string{"a", "b", "a"},
		},
		{
			name:  "search backtracks out of a dead end",
			nodes: []string{"a", "b", "c", "d"},
			deps:  map[string][]string{"a": {"b"}, "b": {"c", "d"}, "c": {"b"}, "d": {"a"}},
			want:  []string{"a", "b", "d", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dag.New(tt.nodes, tt.deps)
			var ce *dag.CycleError
			if !errors.As(err, &ce) {
				t.Fatalf("New error = %v, want *CycleError", err)
			}
			if diff := cmp.Diff(tt.want, ce.Path); diff != "" {
				t.Errorf("cycle mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  string
	}{
		{
			name:  "cycle",
			nodes: []string{"build", "test"},
			deps:  map[string][]string{"build": {"test"}, "test": {"build"}},
			want:  "cycle: build -> test -> build",
		},
		{
			name:  "unknown dependency",
			nodes: []string{"a"},
			deps:  map[string][]string{"a": {"missing"}},
			want:  `node "a" depends on unknown node "missing"`,
		},
		{
			name:  "duplicate node",
			nodes: []string{"a", "b", "a"},
			want:  `duplicate node "a"`,
		},
		{
			name:  "empty node name",
			nodes: []string{"a", ""},
			want:  "empty node name",
		},
		{
			name:  "dependencies of an unknown node",
			nodes: []string{"a"},
			deps:  map[string][]string{"zz": {"a"}, "ghost": nil},
			want:  `dependencies given for unknown node "ghost"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := dag.New(tt.nodes, tt.deps)
			if err == nil {
				t.Fatalf("New succeeded with nodes %v, want error %q", g.Nodes(), tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnknownDep(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  dag.UnknownError
	}{
		{
			name:  "single",
			nodes: []string{"a", "b"},
			deps:  map[string][]string{"b": {"a", "c"}},
			want:  dag.UnknownError{Node: "b", Dep: "c"},
		},
		{
			name:  "smallest node, then smallest dependency",
			nodes: []string{"z", "b"},
			deps:  map[string][]string{"z": {"q"}, "b": {"y", "x", "z"}},
			want:  dag.UnknownError{Node: "b", Dep: "x"},
		},
		{
			name:  "reported before a cycle",
			nodes: []string{"a", "b"},
			deps:  map[string][]string{"a": {"b"}, "b": {"a", "nope"}},
			want:  dag.UnknownError{Node: "b", Dep: "nope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dag.New(tt.nodes, tt.deps)
			var ue *dag.UnknownError
			if !errors.As(err, &ue) {
				t.Fatalf("New error = %v, want *UnknownError", err)
			}
			if diff := cmp.Diff(tt.want, *ue); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueries(t *testing.T) {
	g := mustNew(t, pipelineNodes, pipelineDeps)
	tests := []struct {
		node       string
		has        bool
		deps       []string
		dependents []string
		ancestors  []string
		height     int
	}{
		{node: "build", has: true, dependents: []string{"package", "test"}, height: 2},
		{node: "docs", has: true, height: 0},
		{node: "lint", has: true, dependents: []string{"deploy"}, height: 1},
		{node: "package", has: true, deps: []string{"build"}, dependents: []string{"deploy"}, ancestors: []string{"build"}, height: 1},
		{node: "test", has: true, deps: []string{"build"}, dependents: []string{"deploy"}, ancestors: []string{"build"}, height: 1},
		{node: "deploy", has: true, deps: []string{"lint", "package", "test"}, ancestors: []string{"build", "lint", "package", "test"}, height: 0},
		{node: "unknown", has: false, height: -1},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			if got := g.Has(tt.node); got != tt.has {
				t.Errorf("Has = %v, want %v", got, tt.has)
			}
			if diff := cmp.Diff(tt.deps, g.Deps(tt.node)); diff != "" {
				t.Errorf("Deps mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dependents, g.Dependents(tt.node)); diff != "" {
				t.Errorf("Dependents mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ancestors, g.Ancestors(tt.node)); diff != "" {
				t.Errorf("Ancestors mismatch (-want +got):\n%s", diff)
			}
			if got := g.Height(tt.node); got != tt.height {
				t.Errorf("Height = %d, want %d", got, tt.height)
			}
		})
	}
}

func TestHeight(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  map[string]int
	}{
		{
			name:  "single",
			nodes: []string{"a"},
			want:  map[string]int{"a": 0},
		},
		{
			name:  "chain",
			nodes: []string{"a", "b", "c"},
			deps:  map[string][]string{"b": {"a"}, "c": {"b"}},
			want:  map[string]int{"a": 2, "b": 1, "c": 0},
		},
		{
			name:  "longest chain of dependents wins",
			nodes: []string{"a", "b", "c", "d", "e"},
			deps:  map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"c"}, "e": {"d"}},
			want:  map[string]int{"a": 3, "b": 0, "c": 2, "d": 1, "e": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.deps)
			got := make(map[string]int)
			for _, n := range tt.nodes {
				got[n] = g.Height(n)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Height mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResultsAreCopies checks that callers cannot modify the graph through
// returned slices.
func TestResultsAreCopies(t *testing.T) {
	g := mustNew(t, pipelineNodes, pipelineDeps)
	g.Nodes()[0] = "x"
	g.Deps("deploy")[0] = "x"
	g.Dependents("build")[0] = "x"
	g.Levels()[0][0] = "x"
	g.Ancestors("deploy")[0] = "x"
	if diff := cmp.Diff([]string{"build", "docs", "lint", "package", "test", "deploy"}, g.Nodes()); diff != "" {
		t.Errorf("Nodes() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"lint", "package", "test"}, g.Deps("deploy")); diff != "" {
		t.Errorf("Deps mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"package", "test"}, g.Dependents("build")); diff != "" {
		t.Errorf("Dependents mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"build", "docs", "lint"}, {"package", "test"}, {"deploy"}}, g.Levels()); diff != "" {
		t.Errorf("Levels mismatch (-want +got):\n%s", diff)
	}
}

func TestZeroGraph(t *testing.T) {
	var g dag.Graph
	if got := g.Nodes(); got != nil {
		t.Errorf("Nodes() = %q, want nil", got)
	}
	if got := g.Levels(); got != nil {
		t.Errorf("Levels() = %q, want nil", got)
	}
	if g.Has("a") || g.Height("a") != -1 || g.Deps("a") != nil {
		t.Errorf("zero graph reports node %q", "a")
	}
	sub, err := g.Subgraph(nil)
	if err != nil || sub.Len() != 0 {
		t.Errorf("Subgraph(nil) = %v, %v; want empty graph", sub.Nodes(), err)
	}
}

func TestSubgraph(t *testing.T) {
	g := mustNew(t, pipelineNodes, pipelineDeps)
	type node struct {
		Deps, Dependents []string
	}
	tests := []struct {
		name  string
		roots []string
		nodes []string
		edges map[string]node
	}{
		{name: "no roots"},
		{
			name:  "root without dependencies",
			roots: []string{"docs"},
			nodes: []string{"docs"},
			edges: map[string]node{"docs": {}},
		},
		{
			name:  "transitive dependencies, dependents outside dropped",
			roots: []string{"test"},
			nodes: []string{"build", "test"},
			edges: map[string]node{
				"build": {Dependents: []string{"test"}},
				"test":  {Deps: []string{"build"}},
			},
		},
		{
			name:  "several roots, repeated",
			roots: []string{"test", "lint", "test"},
			nodes: []string{"build", "lint", "test"},
			edges: map[string]node{
				"build": {Dependents: []string{"test"}},
				"lint":  {},
				"test":  {Deps: []string{"build"}},
			},
		},
		{
			name:  "everything below the final node",
			roots: []string{"deploy"},
			nodes: []string{"build", "lint", "package", "test", "deploy"},
			edges: map[string]node{
				"build":   {Dependents: []string{"package", "test"}},
				"lint":    {Dependents: []string{"deploy"}},
				"package": {Deps: []string{"build"}, Dependents: []string{"deploy"}},
				"test":    {Deps: []string{"build"}, Dependents: []string{"deploy"}},
				"deploy":  {Deps: []string{"lint", "package", "test"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := g.Subgraph(tt.roots)
			if err != nil {
				t.Fatalf("Subgraph: %v", err)
			}
			if diff := cmp.Diff(tt.nodes, sub.Nodes()); diff != "" {
				t.Errorf("Nodes() mismatch (-want +got):\n%s", diff)
			}
			edges := make(map[string]node)
			for _, n := range sub.Nodes() {
				edges[n] = node{Deps: sub.Deps(n), Dependents: sub.Dependents(n)}
			}
			if diff := cmp.Diff(tt.edges, edges, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("edges mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unknown root", func(t *testing.T) {
		_, err := g.Subgraph([]string{"test", "nope"})
		want := `unknown root "nope"`
		if err == nil || err.Error() != want {
			t.Errorf("Subgraph error = %v, want %q", err, want)
		}
	})
}

// TestSubgraphMatchesNew checks that a subgraph is the graph New builds from
// the same nodes and edges.
func TestSubgraphMatchesNew(t *testing.T) {
	nodes, deps := randomDAG(7, 300, 4)
	g := mustNew(t, nodes, deps)
	for k, roots := range [][]string{nodes[:1], nodes[:5], nodes[100:130], nodes} {
		t.Run(fmt.Sprint("roots ", k), func(t *testing.T) {
			sub, err := g.Subgraph(roots)
			if err != nil {
				t.Fatalf("Subgraph: %v", err)
			}
			keep := slices.Clone(roots)
			for _, r := range roots {
				keep = append(keep, g.Ancestors(r)...)
			}
			keep = uniq(keep)
			subDeps := make(map[string][]string)
			for _, n := range keep {
				if ds := deps[n]; len(ds) > 0 {
					subDeps[n] = ds
				}
			}
			want := mustNew(t, keep, subDeps)
			if diff := cmp.Diff(want.Nodes(), sub.Nodes()); diff != "" {
				t.Errorf("Nodes() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.Levels(), sub.Levels()); diff != "" {
				t.Errorf("Levels() mismatch (-want +got):\n%s", diff)
			}
			for _, n := range keep {
				if w, g := want.Height(n), sub.Height(n); w != g {
					t.Errorf("Height(%q) = %d, want %d", n, g, w)
				}
				if diff := cmp.Diff(want.Dependents(n), sub.Dependents(n)); diff != "" {
					t.Errorf("Dependents(%q) mismatch (-want +got):\n%s", n, diff)
				}
			}
		})
	}
}
