package termui

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws one line of progress on a terminal's stderr: a bar
// ("inspect ███░░░ 12/32 layers  1.2s") or a free message, rewritten in
// place and cleared by Done. A nil *Progress draws nothing, so callers
// make one only when stderr is a terminal. It is safe for concurrent use.
type Progress struct {
	mu          sync.Mutex
	w           io.Writer
	label, unit string
	start       time.Time
	active      bool
}

// NewProgress returns a progress line on w; label names the work and unit
// what Set counts ("layers").
func NewProgress(w io.Writer, label, unit string) *Progress {
	return &Progress{w: w, label: label, unit: unit, start: time.Now()}
}

// Set draws the bar at done of total (nothing for a total of one).
func (p *Progress) Set(done, total int) {
	if p == nil || total <= 1 {
		return
	}
	const width = 30
	filled := width * min(max(done, 0), total) / total
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s %s%s %d/%d %s  %s", p.label, strings.Repeat("█", filled), strings.Repeat("░", width-filled),
		done, total, p.unit, time.Since(p.start).Round(100*time.Millisecond))
	p.active = true
}

// Show draws msg as the line (sanitised: it may quote names from files).
func (p *Progress) Show(msg string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", Clean(msg))
	p.active = true
}

// Done clears the line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active {
		fmt.Fprint(p.w, "\r\033[K")
		p.active = false
	}
}
