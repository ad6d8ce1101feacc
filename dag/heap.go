package dag

import "container/heap"

// intHeap is a min-heap of node numbers ordered by less, for container/heap.
// Use push and pop rather than heap.Push and heap.Pop: they avoid boxing
// every int in an interface.
type intHeap struct {
	items []int
	less  func(a, b int) bool
}

func (h *intHeap) Len() int           { return len(h.items) }
func (h *intHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *intHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *intHeap) Push(x any)         { h.items = append(h.items, x.(int)) }

func (h *intHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

// init establishes the heap order after items was filled directly.
func (h *intHeap) init() { heap.Init(h) }

// push adds v.
func (h *intHeap) push(v int) {
	h.items = append(h.items, v)
	heap.Fix(h, len(h.items)-1)
}

// pop removes and returns the least item. The heap must not be empty.
func (h *intHeap) pop() int {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	if last > 0 {
		heap.Fix(h, 0)
	}
	return top
}
