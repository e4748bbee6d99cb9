package termui

import (
	"strconv"
	"strings"
)

// Suggest returns up to max of candidates that look like a mistyped name:
// those within a small edit distance of it (a third of its length, at
// least 1, at most 6; letter case ignored), or that contain it or that it
// contains when it is at least 4 characters long — closest first, then in
// the candidates' order. It reads each candidate once (about 2 µs each: a
// second for a checkpoint of a million tensors, on an error path).
func Suggest(name string, candidates []string, max int) []string {
	if name == "" || max <= 0 {
		return nil
	}
	lname := strings.ToLower(name)
	limit := min(6, len([]rune(lname))/3)
	if limit < 1 {
		limit = 1
	}
	type hit struct {
		s string
		d int
	}
	var hits []hit // the best max so far, closest first
	add := func(h hit) {
		if len(hits) == max && hits[max-1].d <= h.d {
			return
		}
		k := len(hits)
		for k > 0 && hits[k-1].d > h.d {
			k--
		}
		if len(hits) < max {
			hits = append(hits, hit{})
		}
		copy(hits[k+1:], hits[k:])
		hits[k] = h
	}
	var prev, cur []int
	var lower []byte
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d, ok := editDistance(lname, c, limit, &prev, &cur); ok {
			add(hit{c, d})
			continue
		}
		if len(lname) < 4 {
			continue
		}
		lower = appendLower(lower[:0], c)
		if len(c) >= len(lname) && strings.Contains(string(lower), lname) || len(c) >= 4 && len(c) < len(lname) && strings.Contains(lname, string(lower)) {
			add(hit{c, limit + 1})
		}
	}
	out := make([]string, len(hits))
	for k, h := range hits {
		out[k] = h.s
	}
	return out
}

// appendLower appends s in ASCII lower case.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// DidYouMean is the hint for a mistyped name: `did you mean "a"?`,
// `did you mean "a" or "b"?`, or "" when nothing is close. Names are
// sanitised and quoted.
func DidYouMean(name string, candidates []string) string {
	s := Suggest(name, candidates, 3)
	if len(s) == 0 {
		return ""
	}
	q := make([]string, len(s))
	for i, c := range s {
		q[i] = strconv.Quote(c)
	}
	switch len(q) {
	case 1:
		return "did you mean " + q[0] + "?"
	case 2:
		return "did you mean " + q[0] + " or " + q[1] + "?"
	}
	return "did you mean " + strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1] + "?"
}

// editDistance is the Levenshtein distance between a and b (bytes, b
// compared in lower case) when it is at most limit; only the band of cells
// within limit of the diagonal is computed. prev and cur are reused rows.
func editDistance(a, b string, limit int, prev, cur *[]int) (int, bool) {
	if d := len(a) - len(b); d > limit || -d > limit {
		return 0, false
	}
	if cap(*prev) < len(b)+1 {
		*prev, *cur = make([]int, len(b)+1), make([]int, len(b)+1)
	}
	p, c := (*prev)[:len(b)+1], (*cur)[:len(b)+1]
	big := limit + 1
	for j := range p {
		p[j] = min(j, big)
	}
	for i := 1; i <= len(a); i++ {
		lo, hi := max(1, i-limit), min(len(b), i+limit)
		if lo > 1 {
			c[lo-1] = big
		} else {
			c[0] = min(i, big)
		}
		best := c[lo-1]
		ai := a[i-1]
		for j := lo; j <= hi; j++ {
			bj := b[j-1]
			if 'A' <= bj && bj <= 'Z' {
				bj += 'a' - 'A'
			}
			v := p[j-1]
			if ai != bj {
				v++
			}
			v = min(v, p[j]+1, c[j-1]+1)
			c[j] = min(v, big)
			best = min(best, c[j])
		}
		if hi < len(b) {
			c[hi+1] = big
		}
		if best > limit {
			return 0, false
		}
		p, c = c, p
	}
	if p[len(b)] > limit {
		return 0, false
	}
	return p[len(b)], true
}
