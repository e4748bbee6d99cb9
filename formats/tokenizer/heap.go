package tokenizer

// heapItem is an item of a heap: before says whether it comes out first.
type heapItem[T any] interface{ before(T) bool }

// heap is a binary heap of candidate merges whose top is the item that
// comes before all others (BPE: the lowest rank; SentencePiece: the
// highest score), ties broken by the items themselves. Its slice is kept
// between calls, so a tokenizer reuses it.
type heap[T heapItem[T]] struct{ a []T }

func (h *heap[T]) len() int { return len(h.a) }

func (h *heap[T]) reset() { h.a = h.a[:0] }

func (h *heap[T]) push(x T) {
	h.a = append(h.a, x)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.a[i].before(h.a[p]) {
			break
		}
		h.a[i], h.a[p] = h.a[p], h.a[i]
		i = p
	}
}

func (h *heap[T]) pop() T {
	top := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	h.a = h.a[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.a[l].before(h.a[m]) {
			m = l
		}
		if r < n && h.a[r].before(h.a[m]) {
			m = r
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}
