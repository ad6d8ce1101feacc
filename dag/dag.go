// Package dag provides an immutable directed acyclic graph of named nodes and
// a scheduler that walks it in dependency order.
//
// A [Graph] is built once by [New], which rejects unknown dependencies,
// duplicate nodes and cycles. It then answers structural queries (topological
// order, levels, dependencies, dependents, ancestors, heights, subgraphs) and
// runs a function for every node with [Graph.Walk], starting each node as soon
// as everything it depends on has finished, critical path first.
//
// The package is generic: it knows nothing about what the nodes stand for.
package dag

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Graph is an immutable directed acyclic graph built by [New].
//
// An edge runs from a node to each node it depends on: a node's dependencies
// come before it in every order the graph produces, and its dependents after.
//
// A Graph is never modified after construction, so all its methods are safe
// for concurrent use, including concurrent calls to [Graph.Walk]. Slices
// returned by its methods are fresh copies that the caller may modify.
// The zero Graph is an empty graph.
type Graph struct {
	// Nodes are numbered by their position in the topological order
	// returned by Nodes, so every dependency has a smaller number than the
	// nodes depending on it.
	names      []string
	index      map[string]int
	deps       [][]int // dependencies of each node, sorted by name
	dependents [][]int // dependents of each node, in topological order
	levels     [][]int // nodes of each level, sorted by name
	height     []int   // see Height
}

// UnknownError reports that a node depends on a node that is not in the graph.
type UnknownError struct {
	Node string // the node declaring the dependency
	Dep  string // the missing dependency
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("node %q depends on unknown node %q", e.Node, e.Dep)
}

// CycleError reports a dependency cycle.
type CycleError struct {
	// Path is the cycle, starting and ending with the same node; each node
	// depends on the node that follows it. A self-dependency of "a" is
	// ["a", "a"].
	Path []string
}

func (e *CycleError) Error() string {
	return "cycle: " + strings.Join(e.Path, " -> ")
}

// New builds a graph. nodes lists every node; deps[n] lists the nodes n
// depends on, that is, the nodes that come before n. Nodes without
// dependencies need no entry in deps, and repeated entries in a dependency
// list count once.
//
// New returns an error if a node name is empty or listed twice, if deps has
// an entry for a node not in nodes, if a node depends on a node not in nodes
// (an [*UnknownError] naming the alphabetically first such node and its first
// missing dependency), or if the dependencies form a cycle (a [*CycleError]).
// When there are several cycles, the one reported is chosen deterministically:
// it starts at the alphabetically smallest node lying on any cycle and is the
// first cycle back to that node found by a depth-first search that follows
// dependencies in name order.
//
// New does not retain nodes, deps or any of their slices.
func New(nodes []string, deps map[string][]string) (*Graph, error) {
	n := len(nodes)
	in := make(map[string]int, n) // name -> position in nodes
	for i, name := range nodes {
		if name == "" {
			return nil, errors.New("empty node name")
		}
		if _, dup := in[name]; dup {
			return nil, fmt.Errorf("duplicate node %q", name)
		}
		in[name] = i
	}
	var stray []string
	for name := range deps {
		if _, ok := in[name]; !ok {
			stray = append(stray, name)
		}
	}
	if len(stray) > 0 {
		return nil, fmt.Errorf("dependencies given for unknown node %q", slices.Min(stray))
	}

	// adj[i] holds the dependencies of nodes[i] as positions in nodes,
	// sorted by name and without repeats.
	total := 0
	for _, ds := range deps {
		total += len(ds)
	}
	adj := make([][]int, n)
	flat := make([]int, 0, total)
	var scratch []string
	var unknown *UnknownError
	for i, name := range nodes {
		ds := deps[name]
		if len(ds) == 0 {
			continue
		}
		scratch = append(scratch[:0], ds...)
		slices.Sort(scratch)
		scratch = slices.Compact(scratch)
		start := len(flat)
		for _, d := range scratch {
			j, ok := in[d]
			if !ok {
				// scratch is sorted, so the first unknown dependency of a
				// node is its smallest one.
				if unknown == nil || name < unknown.Node {
					unknown = &UnknownError{Node: name, Dep: d}
				}
				continue
			}
			flat = append(flat, j)
		}
		adj[i] = flat[start:len(flat):len(flat)]
	}
	if unknown != nil {
		return nil, unknown
	}

	// Kahn's algorithm with a min-heap on names yields the topological order
	// that breaks ties by name.
	rev := reverse(adj, len(flat))
	pending := make([]int, n)
	ready := &intHeap{less: func(a, b int) bool { return nodes[a] < nodes[b] }}
	for i := range n {
		pending[i] = len(adj[i])
		if pending[i] == 0 {
			ready.items = append(ready.items, i)
		}
	}
	ready.init()
	order := make([]int, 0, n)
	for ready.Len() > 0 {
		i := ready.pop()
		order = append(order, i)
		for _, j := range rev[i] {
			pending[j]--
			if pending[j] == 0 {
				ready.push(j)
			}
		}
	}
	if len(order) < n {
		// Nodes never released are on a cycle or depend on one.
		return nil, &CycleError{Path: findCycle(nodes, adj, pending)}
	}

	// Renumber nodes by topological position.
	pos := make([]int, n)
	for p, i := range order {
		pos[i] = p
	}
	names := make([]string, n)
	tdeps := make([][]int, n)
	tflat := make([]int, 0, len(flat))
	for p, i := range order {
		names[p] = nodes[i]
		in[nodes[i]] = p
		start := len(tflat)
		for _, j := range adj[i] {
			tflat = append(tflat, pos[j]) // renumbering keeps name order
		}
		tdeps[p] = tflat[start:len(tflat):len(tflat)]
	}
	return build(names, in, tdeps), nil
}

// build assembles a Graph from nodes in topological order. deps[i] lists the
// dependencies of names[i], sorted by name, all smaller than i. index maps
// each name to its position, or is nil to have build compute it.
func build(names []string, index map[string]int, deps [][]int) *Graph {
	n := len(names)
	if index == nil {
		index = make(map[string]int, n)
		for i, name := range names {
			index[name] = i
		}
	}
	total := 0
	for _, ds := range deps {
		total += len(ds)
	}
	g := &Graph{
		names:      names,
		index:      index,
		deps:       deps,
		dependents: reverse(deps, total),
		height:     make([]int, n),
	}

	level := make([]int, n)
	top := -1
	for i, ds := range deps {
		l := 0
		for _, d := range ds {
			l = max(l, level[d]+1)
		}
		level[i] = l
		top = max(top, l)
	}
	// Carve all levels out of one array: a chain has as many levels as nodes.
	size := make([]int, top+1)
	for _, l := range level {
		size[l]++
	}
	flat := make([]int, n)
	g.levels = make([][]int, top+1)
	off := 0
	for l, s := range size {
		g.levels[l] = flat[off : off : off+s]
		off += s
	}
	for i, l := range level {
		g.levels[l] = append(g.levels[l], i)
	}
	for _, nodes := range g.levels {
		g.sortByName(nodes)
	}

	for i := n - 1; i >= 0; i-- {
		h := 0
		for _, d := range g.dependents[i] {
			h = max(h, g.height[d]+1)
		}
		g.height[i] = h
	}
	return g
}

// reverse returns the reverse of the adjacency lists adj, which hold total
// entries. Each reversed list is in increasing order.
func reverse(adj [][]int, total int) [][]int {
	count := make([]int, len(adj))
	for _, out := range adj {
		for _, j := range out {
			count[j]++
		}
	}
	flat := make([]int, total)
	rev := make([][]int, len(adj))
	off := 0
	for i, c := range count {
		rev[i] = flat[off : off : off+c]
		off += c
	}
	for i, out := range adj {
		for _, j := range out {
			rev[j] = append(rev[j], i)
		}
	}
	return rev
}

// findCycle returns a cycle among the nodes with stuck[i] > 0, which must
// contain one. adj lists dependencies sorted by name. The cycle starts at the
// smallest name on any cycle and is the first one back to it found by a
// depth-first search following adj in order.
func findCycle(names []string, adj [][]int, stuck []int) []string {
	comp := components(adj, stuck)
	size := make([]int, len(comp)) // nodes per component
	for _, c := range comp {
		if c >= 0 {
			size[c]++
		}
	}
	start := -1
	for i, c := range comp {
		if c < 0 || (start >= 0 && names[i] >= names[start]) {
			continue
		}
		if size[c] > 1 || slices.Contains(adj[i], i) {
			start = i
		}
	}

	type frame struct{ node, next int }
	seen := make([]bool, len(names))
	seen[start] = true
	stack := []frame{{start, 0}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == len(adj[f.node]) {
			stack = stack[:len(stack)-1]
			continue
		}
		d := adj[f.node][f.next]
		f.next++
		if d == start {
			path := make([]string, 0, len(stack)+1)
			for _, f := range stack {
				path = append(path, names[f.node])
			}
			return append(path, names[start])
		}
		if comp[d] != comp[start] || seen[d] {
			continue
		}
		seen[d] = true
		stack = append(stack, frame{d, 0})
	}
	panic("dag: internal error: no cycle found")
}

// components returns the strongly connected component of every node with
// stuck[i] > 0 (Tarjan's algorithm, without recursion) and -1 for the others.
func components(adj [][]int, stuck []int) []int {
	n := len(adj)
	comp := make([]int, n)
	num := make([]int, n) // discovery number, 0 = not yet visited
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range comp {
		comp[i] = -1
	}
	type frame struct{ node, next int }
	var stack []int
	var frames []frame
	counter, ncomp := 0, 0
	for root := range n {
		if stuck[root] == 0 || num[root] != 0 {
			continue
		}
		counter++
		num[root], low[root] = counter, counter
		stack = append(stack, root)
		onStack[root] = true
		frames = append(frames[:0], frame{root, 0})
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			v := f.node
			if f.next < len(adj[v]) {
				w := adj[v][f.next]
				f.next++
				switch {
				case stuck[w] == 0:
				case num[w] == 0:
					counter++
					num[w], low[w] = counter, counter
					stack = append(stack, w)
					onStack[w] = true
					frames = append(frames, frame{w, 0})
				case onStack[w]:
					low[v] = min(low[v], num[w])
				}
				continue
			}
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				u := frames[len(frames)-1].node
				low[u] = min(low[u], low[v])
			}
			if low[v] == num[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = ncomp
					if w == v {
						break
					}
				}
				ncomp++
			}
		}
	}
	return comp
}

// Len returns the number of nodes.
func (g *Graph) Len() int { return len(g.names) }

// Has reports whether n is a node of g.
func (g *Graph) Has(n string) bool {
	_, ok := g.index[n]
	return ok
}

// Nodes returns all nodes in topological order (every node after the nodes
// it depends on), ties broken by name: of the nodes whose dependencies have
// all been listed, the alphabetically smallest comes next. It returns nil for
// an empty graph.
func (g *Graph) Nodes() []string {
	if len(g.names) == 0 {
		return nil
	}
	return slices.Clone(g.names)
}

// Deps returns the nodes n depends on directly, sorted by name. It returns
// nil if there are none or n is not in g.
func (g *Graph) Deps(n string) []string {
	i, ok := g.index[n]
	if !ok {
		return nil
	}
	return g.namesOf(g.deps[i])
}

// Dependents returns the nodes depending directly on n, sorted by name. It
// returns nil if there are none or n is not in g.
func (g *Graph) Dependents(n string) []string {
	i, ok := g.index[n]
	if !ok {
		return nil
	}
	out := g.namesOf(g.dependents[i])
	slices.Sort(out)
	return out
}

// Levels groups the nodes by level: level 0 holds the nodes without
// dependencies and level k the nodes whose deepest dependency is on level
// k-1. Each level is sorted by name. Levels returns nil for an empty graph.
func (g *Graph) Levels() [][]string {
	if len(g.levels) == 0 {
		return nil
	}
	out := make([][]string, len(g.levels))
	for l, nodes := range g.levels {
		out[l] = g.namesOf(nodes)
	}
	return out
}

// Ancestors returns the nodes n depends on directly or indirectly, sorted by
// name. It returns nil if there are none or n is not in g.
func (g *Graph) Ancestors(n string) []string {
	i, ok := g.index[n]
	if !ok {
		return nil
	}
	seen := make(map[int]bool)
	var out []string
	stack := []int{i}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g.deps[v] {
			if !seen[d] {
				seen[d] = true
				out = append(out, g.names[d])
				stack = append(stack, d)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Height returns the length, in edges, of the longest chain of dependents
// starting at n: 0 if nothing depends on n, otherwise 1 + the greatest height
// of its dependents. It measures how much work waits behind n, which is what
// [Graph.Walk] uses to run the critical path first. Height returns -1 if n is
// not in g.
func (g *Graph) Height(n string) int {
	i, ok := g.index[n]
	if !ok {
		return -1
	}
	return g.height[i]
}

// Subgraph returns the graph made of roots and every node they depend on,
// directly or indirectly, with the same edges among them. It returns an
// error if a root is not in g. Repeated roots count once; no roots give an
// empty graph.
func (g *Graph) Subgraph(roots []string) (*Graph, error) {
	keep := make([]bool, len(g.names))
	var stack []int
	for _, r := range roots {
		i, ok := g.index[r]
		if !ok {
			return nil, fmt.Errorf("unknown root %q", r)
		}
		if !keep[i] {
			keep[i] = true
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g.deps[v] {
			if !keep[d] {
				keep[d] = true
				stack = append(stack, d)
			}
		}
	}

	// The kept nodes are closed under dependencies, so restricting the
	// topological order to them gives exactly the order New would compute
	// for them: a kept node becomes ready at the same point in both.
	pos := make([]int, len(g.names))
	var names []string
	var deps [][]int
	for i, k := range keep {
		if !k {
			continue
		}
		pos[i] = len(names)
		names = append(names, g.names[i])
		ds := make([]int, len(g.deps[i]))
		for j, d := range g.deps[i] {
			ds[j] = pos[d]
		}
		deps = append(deps, ds)
	}
	return build(names, nil, deps), nil
}

// namesOf returns the names of the given nodes, in the same order.
func (g *Graph) namesOf(nodes []int) []string {
	if len(nodes) == 0 {
		return nil
	}
	out := make([]string, len(nodes))
	for k, i := range nodes {
		out[k] = g.names[i]
	}
	return out
}

// sortByName sorts nodes by name in place.
func (g *Graph) sortByName(nodes []int) {
	slices.SortFunc(nodes, func(a, b int) int { return strings.Compare(g.names[a], g.names[b]) })
}
