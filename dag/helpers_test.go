package dag_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// randomDAG returns n nodes, listed in random order, each depending on up to
// maxDeps nodes generated before it (so there is no cycle; repeats are
// possible and must be ignored by New). Names are assigned at random, so name
// order and dependency order disagree.
func randomDAG(seed uint64, n, maxDeps int) ([]string, map[string][]string) {
	r := rand.New(rand.NewPCG(seed, 0))
	names := make([]string, n)
	for i, p := range r.Perm(n) {
		names[i] = fmt.Sprintf("n%05d", p)
	}
	deps := make(map[string][]string)
	for i := 1; i < n; i++ {
		for range r.IntN(maxDeps + 1) {
			deps[names[i]] = append(deps[names[i]], names[r.IntN(i)])
		}
	}
	nodes := slices.Clone(names)
	r.Shuffle(n, func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	return nodes, deps
}

// chainDAG returns n nodes where each depends on the previous one.
func chainDAG(n int) ([]string, map[string][]string) {
	nodes := make([]string, n)
	deps := make(map[string][]string, n)
	for i := range n {
		nodes[i] = fmt.Sprintf("n%05d", i)
		if i > 0 {
			deps[nodes[i]] = []string{nodes[i-1]}
		}
	}
	return nodes, deps
}

// fanOutDAG returns a root and n-1 nodes depending on it alone.
func fanOutDAG(n int) ([]string, map[string][]string) {
	nodes := make([]string, n)
	deps := make(map[string][]string, n)
	for i := range n {
		nodes[i] = fmt.Sprintf("n%05d", i)
		if i > 0 {
			deps[nodes[i]] = []string{nodes[0]}
		}
	}
	return nodes, deps
}

// uniq returns the distinct elements of s in their first order.
func uniq(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// refOrder is a slow reference for Graph.Nodes: repeatedly take the smallest
// name whose dependencies are all taken.
func refOrder(nodes []string, deps map[string][]string) []string {
	taken := make(map[string]bool)
	var out []string
	for len(out) < len(nodes) {
		best := ""
		for _, n := range nodes {
			if taken[n] || (best != "" && n > best) {
				continue
			}
			ok := true
			for _, d := range deps[n] {
				ok = ok && taken[d]
			}
			if ok {
				best = n
			}
		}
		taken[best] = true
		out = append(out, best)
	}
	return out
}

// refLevels is a slow reference for Graph.Levels.
func refLevels(nodes []string, deps map[string][]string) [][]string {
	memo := make(map[string]int)
	var level func(string) int
	level = func(n string) int {
		if l, ok := memo[n]; ok {
			return l
		}
		l := 0
		for _, d := range deps[n] {
			l = max(l, level(d)+1)
		}
		memo[n] = l
		return l
	}
	var out [][]string
	for _, n := range nodes {
		l := level(n)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], n)
	}
	for _, lv := range out {
		slices.Sort(lv)
	}
	return out
}

// refHeights is a slow reference for Graph.Height.
func refHeights(nodes []string, deps map[string][]string) map[string]int {
	dependents := make(map[string][]string)
	for _, n := range nodes {
		for _, d := range deps[n] {
			dependents[d] = append(dependents[d], n)
		}
	}
	memo := make(map[string]int)
	var height func(string) int
	height = func(n string) int {
		if h, ok := memo[n]; ok {
			return h
		}
		h := 0
		for _, d := range dependents[n] {
			h = max(h, height(d)+1)
		}
		memo[n] = h
		return h
	}
	out := make(map[string]int)
	for _, n := range nodes {
		out[n] = height(n)
	}
	return out
}
