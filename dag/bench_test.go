package dag_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nixflow/nixflow/dag"
)

// benchShapes are the graph shapes benchmarked, each at benchSizes nodes.
var benchShapes = []struct {
	name string
	gen  func(n int) ([]string, map[string][]string)
}{
	{"chain", chainDAG},
	{"fanout", fanOutDAG},
	{"random", func(n int) ([]string, map[string][]string) { return randomDAG(1, n, 4) }},
}

var benchSizes = []int{1000, 10000}

// reportPerNode adds the ns/node metric: time per operation divided by the
// number of nodes.
func reportPerNode(b *testing.B, nodes int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nodes), "ns/node")
}

func BenchmarkNew(b *testing.B) {
	for _, s := range benchShapes {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", s.name, n), func(b *testing.B) {
				nodes, deps := s.gen(n)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := dag.New(nodes, deps); err != nil {
						b.Fatal(err)
					}
				}
				reportPerNode(b, n)
			})
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	modes := []struct {
		name string
		opts dag.WalkOptions
	}{
		{"nocap", dag.WalkOptions{}},
		{"max2", dag.WalkOptions{MaxParallel: 2}},
		{"levels", dag.WalkOptions{Levels: true}},
	}
	for _, s := range benchShapes {
		for _, n := range benchSizes {
			for _, m := range modes {
				b.Run(fmt.Sprintf("%s/%d/%s", s.name, n, m.name), func(b *testing.B) {
					nodes, deps := s.gen(n)
					g, err := dag.New(nodes, deps)
					if err != nil {
						b.Fatal(err)
					}
					ctx := context.Background()
					visit := func(context.Context, string) {}
					b.ReportAllocs()
					for b.Loop() {
						g.Walk(ctx, m.opts, visit)
					}
					reportPerNode(b, n)
				})
			}
		}
	}
}
