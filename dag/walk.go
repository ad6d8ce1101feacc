package dag

import (
	"context"
	"sync"
)

// WalkOptions configures [Graph.Walk].
type WalkOptions struct {
	// MaxParallel caps how many visits run at the same time. Zero or a
	// negative value means no cap.
	MaxParallel int

	// Levels makes the walk proceed level by level (see [Graph.Levels]):
	// no node of level k starts before every node of level k-1 has
	// finished. Without it a node starts as soon as its own dependencies
	// have finished.
	Levels bool
}

// Walk calls visit once for every node of g and returns when all the calls
// have returned.
//
// A node is visited only after the visits of all its dependencies have
// returned, and, unless opts.Levels is set, as soon as possible after that:
// there are no level barriers, a finished node releases its dependents
// immediately. At most opts.MaxParallel visits run at a time. When more nodes
// are ready than may start, those with the greatest [Graph.Height] (the
// longest chain of work waiting behind them) start first, ties going to the
// node earlier in [Graph.Nodes] order. With MaxParallel 1 the order of visits
// is therefore fully determined by the graph.
//
// Walk never skips a node and does not watch ctx: it only passes ctx to
// visit. Deciding what visiting a node means when a dependency failed or ctx
// is done (running it, skipping it, cancelling it) is up to visit, which
// still gets called for every node.
//
// Concurrency: visit is called from several goroutines at once, never twice
// for the same node. Everything a visit does happens before the visits of
// the nodes depending on it start (in the sense of the Go memory model), so
// a visit may read results written by its dependencies' visits without
// further synchronisation, and the caller may read all results once Walk has
// returned. visit must not panic: a panic in visit is not recovered and
// terminates the program. Walk may be called concurrently on the same graph.
//
// The scheduling loop runs in the calling goroutine and owns all scheduling
// state. Visits run on worker goroutines, started as the visits running at
// once grow in number and reused after: each reports back on a channel
// when its visit returns. A goroutine of its own per visit would grow a new
// stack, by copying, for every visit (a job's visit calls deep, down to
// fork and exec).
func (g *Graph) Walk(ctx context.Context, opts WalkOptions, visit func(ctx context.Context, node string)) {
	n := len(g.names)
	if n == 0 {
		return
	}
	limit := opts.MaxParallel
	if limit <= 0 || limit > n {
		limit = n
	}
	// At most limit visits run at once, so their reports never block.
	done := make(chan int, limit)

	height := g.height
	ready := &intHeap{
		items: make([]int, 0, min(n, 64)),
		less: func(a, b int) bool {
			if height[a] != height[b] {
				return height[a] > height[b]
			}
			return a < b
		},
	}

	// In Levels mode only the current level is ever ready: level k's
	// dependencies all lie on earlier levels, so once those have finished
	// the whole of level k is ready. Otherwise pending counts the
	// unfinished dependencies of each node.
	var pending []int
	level, levelLeft := 0, 0
	if opts.Levels {
		ready.items = append(ready.items, g.levels[0]...)
		levelLeft = len(g.levels[0])
	} else {
		pending = make([]int, n)
		for i, ds := range g.deps {
			pending[i] = len(ds)
			if len(ds) == 0 {
				ready.items = append(ready.items, i)
			}
		}
	}
	ready.init()

	finish := func(i int) {
		if opts.Levels {
			levelLeft--
			if levelLeft == 0 && level+1 < len(g.levels) {
				level++
				for _, j := range g.levels[level] {
					ready.push(j)
				}
				levelLeft = len(g.levels[level])
			}
			return
		}
		for _, j := range g.dependents[i] {
			pending[j]--
			if pending[j] == 0 {
				ready.push(j)
			}
		}
	}

	// work hands ready nodes to the workers: there are always at least as
	// many workers as visits running, so a node sent waits only for a
	// worker to come back from the visit it reported.
	work := make(chan int, limit)
	var workers sync.WaitGroup
	defer func() {
		close(work)
		workers.Wait()
	}()
	running, finished, started := 0, 0, 0
	for finished < n {
		for running < limit && ready.Len() > 0 {
			work <- ready.pop()
			running++
			if started < running {
				started++
				workers.Go(func() {
					for i := range work {
						visit(ctx, g.names[i])
						done <- i
					}
				})
			}
		}
		// Wait for one visit, then collect any others that have returned
		// meanwhile so the next dispatch chooses among all ready nodes.
		finish(<-done)
		running--
		finished++
	drain:
		for running > 0 {
			select {
			case i := <-done:
				finish(i)
				running--
				finished++
			default:
				break drain
			}
		}
	}
}
