// Command gen writes one benchmark DAG shape twice: as a nixflow job graph
// (graph.json, schema v1) and as an equivalent Makefile (one phony target
// per job, prerequisites = needs, recipe = the job's command, run by the
// same bash with the same flags as nixflow runs steps).
//
//	go run ./bench/gen -shape skewed -out bench/out/skewed
//
// It prints key=value lines on stdout: shape, jobs, edges, levels, and
// for shapes with sleeps critical_path (the longest chain of sleeps, in
// seconds: the best wall time any scheduler can reach without a cap on
// parallelism) and levels_bound (the best wall time of a level-by-level
// schedule: the sum over levels of the longest job of each level).
//
// Shapes:
//
//	noop1000  1,000 jobs running `true`, a random DAG (fixed seed): each job
//	          needs up to 4 distinct earlier jobs
//	chain     200 jobs running `true`, each needing the one before
//	fanout    1 root, 500 children needing it, 1 sink needing all children
//	skewed    a chain of 5 jobs running `sleep 0.4` (2 s), 40 jobs running
//	          `sleep 0.1` hanging off the first four chain jobs, and 3
//	          chains of 8 such jobs started at different points: the long
//	          chain is the critical path, but the short chains are deeper
//	          in levels
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// job is one job of a shape: its command and how long it takes (the
// sleep, or zero).
type job struct {
	name  string
	cmd   string
	secs  float64
	needs []string
}

type shape struct {
	name string
	jobs []*job
}

func (s *shape) add(name, cmd string, secs float64, needs ...string) {
	s.jobs = append(s.jobs, &job{name: name, cmd: cmd, secs: secs, needs: needs})
}

func noop1000(seed uint64) *shape { return random(seed, 1000) }

// random is n jobs running `true`, each needing up to 4 distinct earlier
// jobs (noop1000 is random with n = 1000).
func random(seed uint64, n int) *shape {
	s := &shape{name: fmt.Sprintf("random%d", n)}
	if n == 1000 {
		s.name = "noop1000"
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	name := func(i int) string { return fmt.Sprintf("j%04d", i) }
	for i := range n {
		var needs []string
		if i > 0 {
			for range rng.IntN(5) {
				if d := name(rng.IntN(i)); !slices.Contains(needs, d) {
					needs = append(needs, d)
				}
			}
		}
		s.add(name(i), "true", 0, needs...)
	}
	return s
}

func chain() *shape {
	s := &shape{name: "chain"}
	for i := range 200 {
		var needs []string
		if i > 0 {
			needs = []string{fmt.Sprintf("c%03d", i-1)}
		}
		s.add(fmt.Sprintf("c%03d", i), "true", 0, needs...)
	}
	return s
}

func fanout() *shape {
	s := &shape{name: "fanout"}
	s.add("root", "true", 0)
	var children []string
	for i := range 500 {
		n := fmt.Sprintf("f%03d", i)
		children = append(children, n)
		s.add(n, "true", 0, "root")
	}
	s.add("sink", "true", 0, children...)
	return s
}

func skewed(seed uint64) *shape {
	s := &shape{name: "skewed"}
	const long, short = 0.4, 0.1
	for i := 1; i <= 5; i++ {
		var needs []string
		if i > 1 {
			needs = []string{fmt.Sprintf("long-%d", i-1)}
		}
		s.add(fmt.Sprintf("long-%d", i), "sleep 0.4", long, needs...)
	}
	// Short leaves off long-1..long-4: they end by 1.7 s at the latest,
	// before the chain does.
	rng := rand.New(rand.NewPCG(seed, 40))
	for i := range 40 {
		needs := []string{fmt.Sprintf("long-%d", 1+i%4)}
		if rng.IntN(4) == 0 && i%4 > 0 {
			// Some also need an earlier chain job: a redundant edge.
			needs = append(needs, fmt.Sprintf("long-%d", 1+rng.IntN(i%4)))
		}
		s.add(fmt.Sprintf("leaf-%02d", i), "sleep 0.1", short, needs...)
	}
	// Three chains of 8 short jobs (0.8 s), started at 0, 0.4 and 0.8 s:
	// they end by 1.6 s, but reach levels 7, 8 and 9.
	for c, start := range []string{"", "long-1", "long-2"} {
		prev := start
		for i := 1; i <= 8; i++ {
			var needs []string
			if prev != "" {
				needs = []string{prev}
			}
			n := fmt.Sprintf("tail-%c-%d", 'a'+c, i)
			s.add(n, "sleep 0.1", short, needs...)
			prev = n
		}
	}
	return s
}

// analyse returns the edge count, the level of each job (0: needs
// nothing), the critical path and the level-by-level bound, in seconds.
// Jobs are listed after everything they need.
func (s *shape) analyse() (edges int, levels map[string]int, critical, levelsBound float64) {
	levels = map[string]int{}
	finish := map[string]float64{}
	var longest []float64 // longest job of each level
	for _, j := range s.jobs {
		lvl, start := 0, 0.0
		for _, n := range j.needs {
			lvl = max(lvl, levels[n]+1)
			start = max(start, finish[n])
		}
		edges += len(j.needs)
		levels[j.name] = lvl
		finish[j.name] = start + j.secs
		critical = max(critical, finish[j.name])
		for len(longest) <= lvl {
			longest = append(longest, 0)
		}
		longest[lvl] = max(longest[lvl], j.secs)
	}
	for _, l := range longest {
		levelsBound += l
	}
	return edges, levels, critical, levelsBound
}

func (s *shape) graphJSON() ([]byte, error) {
	type step struct {
		Name string `json:"name"`
		Bash string `json:"bash"`
	}
	type jobJSON struct {
		Executor map[string]any `json:"executor"`
		Needs    []string       `json:"needs,omitempty"`
		Steps    []step         `json:"steps"`
	}
	jobs := make(map[string]jobJSON, len(s.jobs))
	for _, j := range s.jobs {
		jobs[j.name] = jobJSON{
			Executor: map[string]any{"type": "local", "copyRepo": false},
			Needs:    j.needs,
			Steps:    []step{{Name: "run", Bash: j.cmd}},
		}
	}
	data, err := json.MarshalIndent(map[string]any{
		"version": 1,
		"name":    "bench-" + s.name,
		"jobs":    jobs,
	}, "", " ")
	return append(data, '\n'), err
}

func (s *shape) makefile() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by bench/gen for shape %s: one phony target per job,\n", s.name)
	b.WriteString("# prerequisites = needs, recipe = the job's command, run as nixflow\n")
	b.WriteString("# runs steps (bash --noprofile --norc -eo pipefail -c).\n")
	b.WriteString("SHELL := /bin/bash\n")
	b.WriteString(".SHELLFLAGS := --noprofile --norc -eo pipefail -c\n")
	b.WriteString("MAKEFLAGS += --no-builtin-rules --no-builtin-variables\n")
	b.WriteString(".SUFFIXES:\n\n")
	names := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		names[i] = j.name
	}
	fmt.Fprintf(&b, ".PHONY: all %s\n\n", strings.Join(names, " "))
	fmt.Fprintf(&b, "all: %s\n\n", strings.Join(names, " "))
	for _, j := range s.jobs {
		fmt.Fprintf(&b, "%s:", j.name)
		for _, n := range j.needs {
			b.WriteString(" " + n)
		}
		fmt.Fprintf(&b, "\n\t@%s\n\n", j.cmd)
	}
	return []byte(b.String())
}

// taskfile is the shape for go-task: one task per job, deps = needs
// (go-task runs a task's deps in parallel; run: once, or a task needed
// twice runs twice), a default task needing all.
func (s *shape) taskfile() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by bench/gen for shape %s.\nversion: '3'\nsilent: true\nrun: once\ntasks:\n", s.name)
	q := func(v string) string { data, _ := json.Marshal(v); return string(data) }
	b.WriteString("  default:\n    deps: [")
	for i, j := range s.jobs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(j.name))
	}
	b.WriteString("]\n")
	for _, j := range s.jobs {
		fmt.Fprintf(&b, "  %s:\n", q(j.name))
		if len(j.needs) > 0 {
			b.WriteString("    deps: [")
			for i, n := range j.needs {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(q(n))
			}
			b.WriteString("]\n")
		}
		fmt.Fprintf(&b, "    cmds: [%s]\n", q(j.cmd))
	}
	return []byte(b.String())
}

func main() {
	shapeName := flag.String("shape", "", "the shape: noop1000, random, chain, fanout or skewed")
	jobs := flag.Int("jobs", 1000, "the number of jobs of the random shape")
	out := flag.String("out", "", "the directory to write graph.json and Makefile to (created)")
	seed := flag.Uint64("seed", 1, "the seed of the random shapes")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var s *shape
	switch *shapeName {
	case "noop1000":
		s = noop1000(*seed)
	case "random":
		s = random(*seed, *jobs)
	case "chain":
		s = chain()
	case "fanout":
		s = fanout()
	case "skewed":
		s = skewed(*seed)
	default:
		fmt.Fprintf(os.Stderr, "gen: unknown shape %q (known: noop1000, random, chain, fanout, skewed)\n", *shapeName)
		os.Exit(2)
	}
	if err := write(s, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func write(s *shape, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	graph, err := s.graphJSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "graph.json"), graph, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), s.makefile(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Taskfile.yml"), s.taskfile(), 0o644); err != nil {
		return err
	}
	edges, levels, critical, levelsBound := s.analyse()
	depth := 0
	for _, l := range levels {
		depth = max(depth, l+1)
	}
	fmt.Printf("shape=%s\njobs=%d\nedges=%d\nlevels=%d\n", s.name, len(s.jobs), edges, depth)
	if critical > 0 {
		fmt.Printf("critical_path=%.3f\nlevels_bound=%.3f\n", critical, levelsBound)
	}
	return nil
}
