package termui

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Progress draws one line of progress on a terminal's stderr:
//
//	inspect ███████░░░░░░░ 12/32 layers  1.3/s  ETA 15s  9s · fetched 12.0 MiB, 3.1 MiB/s
//
// a bar with the count, the rate, the time left and the time spent (or a
// free message, Show), plus an optional note (Note: remote reads). It is
// drawn from the first call (Start draws 0/N at once), redrawn every second
// while nothing changes so that the clock moves, rewritten in place without
// leftovers (the line is cleared to its end, and never longer than the
// terminal, so it never wraps), and cleared by Done. A nil *Progress draws
// nothing, so callers make one only when stderr is a terminal. It is safe
// for concurrent use.
type Progress struct {
	mu          sync.Mutex
	w           io.Writer
	label, unit string
	cols        int  // the terminal's width; 0: 80
	ascii       bool // a terminal without Unicode or escapes (TERM=dumb)
	start       time.Time
	done, total int64
	bytes       bool   // the counts are bytes
	counting    bool   // Start, Set or SetBytes was called
	msg         string // Show's message: replaces the bar
	note        string
	drawn       bool // a line is on the screen
	lastLen     int  // its width (ASCII mode pads over it)
	lastDraw    time.Time
	timer       *time.Timer
	now         func() time.Time
}

// NewProgress returns a progress line on w; label names the work and unit
// what Set counts ("layers").
func NewProgress(w io.Writer, label, unit string) *Progress {
	return &Progress{w: w, label: label, unit: unit, start: time.Now(), now: time.Now}
}

// Fit sets the terminal's width in columns and whether it is an ASCII
// terminal (TERM=dumb: no block characters, no escape sequences); it
// returns p.
func (p *Progress) Fit(cols int, ascii bool) *Progress {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.cols, p.ascii = cols, ascii
	p.mu.Unlock()
	return p
}

// redrawEvery bounds how often changes are drawn; heartbeat is how often an
// unchanged line is redrawn so that its clock moves.
const (
	redrawEvery = 100 * time.Millisecond
	heartbeat   = time.Second
)

// Start draws the bar at 0 of total at once: a long command shows its
// progress from its first second, not after its first unit of work.
func (p *Progress) Start(total int) { p.Set(0, total) }

// Set draws the bar at done of total.
func (p *Progress) Set(done, total int) { p.set(int64(done), int64(total), false) }

// SetBytes draws the bar at done of total bytes (sizes and a byte rate).
// A total below 0 means unknown: the bytes and the rate are shown without
// a bar.
func (p *Progress) SetBytes(done, total int64) { p.set(done, total, true) }

func (p *Progress) set(done, total int64, bytes bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.counting {
		p.start = p.now() // the rate counts from the first report
	}
	p.done, p.total, p.bytes, p.counting, p.msg = done, total, bytes, true, ""
	if p.drawn && done < total && p.now().Sub(p.lastDraw) < redrawEvery {
		return
	}
	p.draw()
}

// Show draws msg as the line instead of the bar (sanitised: it may quote
// names from files).
func (p *Progress) Show(msg string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msg = Clean(msg)
	p.draw()
}

// Note sets a second status shown after the bar or message ("" for none):
// remote reads report their bytes and rate here while a command's bar runs.
// With nothing else to show, the note is the line.
func (p *Progress) Note(note string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.note = Clean(note)
	if p.drawn && p.now().Sub(p.lastDraw) < redrawEvery {
		return
	}
	p.draw()
}

// Done clears the line and stops the clock; the Progress may be used again.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.drawn {
		p.clear()
	}
	p.drawn, p.counting, p.msg, p.note = false, false, "", ""
}

// clear erases the line on the screen.
func (p *Progress) clear() {
	if p.ascii {
		io.WriteString(p.w, "\r"+strings.Repeat(" ", p.lastLen)+"\r")
	} else {
		io.WriteString(p.w, "\r\033[K")
	}
	p.lastLen = 0
}

// draw writes the line (p.mu held) and arms the heartbeat.
func (p *Progress) draw() {
	line := p.line()
	if line == "" {
		return
	}
	n := Width(line)
	if p.ascii {
		pad := ""
		if p.lastLen > n {
			pad = strings.Repeat(" ", p.lastLen-n)
		}
		io.WriteString(p.w, "\r"+line+pad)
	} else {
		io.WriteString(p.w, "\r"+line+"\033[K")
	}
	p.lastLen, p.drawn, p.lastDraw = n, true, p.now()
	if p.timer == nil {
		p.timer = time.AfterFunc(heartbeat, p.tick)
	}
}

func (p *Progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer == nil { // Done ran
		return
	}
	p.timer = nil
	if p.drawn {
		p.draw()
	}
}

// line builds the text to draw, fitted to the width minus one column (a
// line that fills the last column makes some terminals wrap).
func (p *Progress) line() string {
	room := p.cols
	if room <= 0 {
		room = 80
	}
	room--
	elapsed := p.now().Sub(p.start)
	var parts []string // the pieces after the bar, least important last
	head := p.label
	barWidth := 0
	switch {
	case p.msg != "":
		head = p.msg
	case p.counting:
		if p.total > 0 {
			barWidth = 30
		}
		parts = append(parts, p.count())
		rate := 0.0
		if s := elapsed.Seconds(); s > 0 && p.done > 0 {
			rate = float64(p.done) / s
		}
		if rate > 0 {
			parts = append(parts, p.rate(rate))
			if p.total > 0 && p.done < p.total {
				left := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
				parts = append(parts, "ETA "+Duration(left))
			}
		}
		parts = append(parts, Duration(elapsed))
	case p.note == "":
		return ""
	}
	note := ""
	if p.note != "" {
		note = " · " + p.note
		if head == "" && barWidth == 0 && len(parts) == 0 {
			note = p.note
		}
	}
	build := func(bw int, parts []string, note string) string {
		var b strings.Builder
		b.WriteString(head)
		if bw > 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p.bar(bw))
		}
		for i, s := range parts {
			if b.Len() > 0 {
				if i == 0 {
					b.WriteByte(' ')
				} else {
					b.WriteString("  ")
				}
			}
			b.WriteString(s)
		}
		b.WriteString(note)
		return b.String()
	}
	// Too wide: a narrower bar, then no note, then fewer trailing pieces,
	// then no bar, then the text cut in the middle.
	s := build(barWidth, parts, note)
	if over := Width(s) - room; over > 0 && barWidth > 10 {
		barWidth = max(10, barWidth-over)
		s = build(barWidth, parts, note)
	}
	if Width(s) > room && note != "" && (head != "" || barWidth > 0 || len(parts) > 0) {
		note = ""
		s = build(barWidth, parts, note)
	}
	for Width(s) > room && len(parts) > 1 {
		parts = parts[:len(parts)-1]
		s = build(barWidth, parts, note)
	}
	if Width(s) > room && barWidth > 0 {
		s = build(0, parts, note)
	}
	return TruncateMiddle(s, room, p.ascii)
}

func (p *Progress) bar(width int) string {
	filled := int(int64(width) * min(max(p.done, 0), p.total) / p.total)
	full, empty := "█", "░"
	if p.ascii {
		full, empty = "#", "."
	}
	if p.ascii {
		return "[" + strings.Repeat(full, filled) + strings.Repeat(empty, width-filled) + "]"
	}
	return strings.Repeat(full, filled) + strings.Repeat(empty, width-filled)
}

func (p *Progress) count() string {
	if p.bytes {
		if p.total >= 0 {
			return Bytes(p.done) + " of " + Bytes(p.total)
		}
		return Bytes(p.done)
	}
	s := strconv.FormatInt(p.done, 10)
	if p.total > 0 {
		s += "/" + strconv.FormatInt(p.total, 10)
	}
	if p.unit != "" {
		s += " " + p.unit
	}
	return s
}

func (p *Progress) rate(r float64) string {
	if p.bytes {
		return Bytes(int64(r)) + "/s"
	}
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f/s", r)
	case r >= 1:
		return fmt.Sprintf("%.1f/s", r)
	}
	return fmt.Sprintf("%.2f/s", r)
}

// Duration formats a time span for people, to the second: "0s", "9s",
// "2m05s", "1h02m".
func Duration(d time.Duration) string {
	s := max(int64(d.Round(time.Second)/time.Second), 0)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 100*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dh", s/3600)
}
