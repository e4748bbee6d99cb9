package termui

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// screen is a writer that remembers what the last line on a terminal
// shows, applying \r and ESC[K as a terminal does.
type screen struct {
	mu     sync.Mutex
	line   []rune
	col    int
	writes []string
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, string(p))
	str := string(p)
	for i := 0; i < len(str); {
		switch {
		case str[i] == '\r':
			s.col = 0
			i++
		case strings.HasPrefix(str[i:], "\033[K"):
			s.line = s.line[:s.col]
			i += 3
		default:
			r := []rune(str[i:])[0]
			if s.col < len(s.line) {
				s.line[s.col] = r
			} else {
				s.line = append(s.line, r)
			}
			s.col++
			i += len(string(r))
		}
	}
	return len(p), nil
}

func (s *screen) shown() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimRight(string(s.line), " ")
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestProgress(cols int, ascii bool) (*Progress, *screen, *fakeClock) {
	sc := &screen{}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := NewProgress(sc, "inspect", "layers").Fit(cols, ascii)
	p.now = clk.now
	p.start = clk.t
	return p, sc, clk
}

func TestProgressCountsRateETA(t *testing.T) {
	p, sc, clk := newTestProgress(100, false)
	p.Start(32)
	if got := sc.shown(); !strings.HasPrefix(got, "inspect ░") || !strings.Contains(got, " 0/32 layers") || !strings.HasSuffix(got, "0s") {
		t.Fatalf("start: %q", got)
	}
	clk.t = clk.t.Add(10 * time.Second)
	p.Set(8, 32)
	got := sc.shown()
	// 8 layers in 10 s: 0.8/s, 24 left: 30 s.
	for _, want := range []string{"8/32 layers", "0.80/s", "ETA 30s", "10s", strings.Repeat("█", 7) + "░"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	clk.t = clk.t.Add(time.Second)
	p.Note("fetched 1.0 MiB, 2.0 MiB/s")
	if got := sc.shown(); !strings.HasSuffix(got, "· fetched 1.0 MiB, 2.0 MiB/s") {
		t.Errorf("note: %q", got)
	}
	p.Done()
	if got := sc.shown(); got != "" {
		t.Errorf("after Done: %q", got)
	}
}

// A shorter line leaves nothing of the longer one before it, and no line
// is as wide as the terminal.
func TestProgressNoLeftovers(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		p, sc, clk := newTestProgress(80, ascii)
		p.Show(strings.Repeat("x", 70))
		clk.t = clk.t.Add(time.Second)
		p.Show("short")
		if got := sc.shown(); got != "short" {
			t.Errorf("ascii=%v: %q", ascii, got)
		}
		p.Show(strings.Repeat("y", 200) + "END")
		if got := sc.shown(); Width(got) > 79 || !strings.HasSuffix(got, "END") {
			t.Errorf("ascii=%v: a long line is %d wide: %q", ascii, Width(got), got)
		}
		p.Done()
		if got := sc.shown(); got != "" {
			t.Errorf("ascii=%v: after Done %q", ascii, got)
		}
		if ascii {
			for _, w := range sc.writes {
				if strings.ContainsAny(w, "\033█░") {
					t.Errorf("ASCII mode wrote %q", w)
				}
			}
		}
	}
}

// At 80 columns with a long label and a note, the line fits: the bar
// narrows, then the note goes, then the trailing pieces.
func TestProgressFits(t *testing.T) {
	for _, cols := range []int{40, 60, 80, 120} {
		p, sc, clk := newTestProgress(cols, false)
		p.label = "export model-00001-of-00004.safetensors"
		p.Start(1000)
		clk.t = clk.t.Add(3 * time.Second)
		p.Note("fetched 120.0 MiB, 40.0 MiB/s")
		p.Set(500, 1000)
		if got := sc.shown(); Width(got) >= cols {
			t.Errorf("%d cols: %d wide: %q", cols, Width(got), got)
		}
	}
}

func TestProgressBytes(t *testing.T) {
	p, sc, clk := newTestProgress(120, false)
	p.SetBytes(0, 4<<30)
	clk.t = clk.t.Add(2 * time.Second)
	p.SetBytes(1<<30, 4<<30)
	if got := sc.shown(); !strings.Contains(got, "1.0 GiB of 4.0 GiB") || !strings.Contains(got, "512.0 MiB/s") || !strings.Contains(got, "ETA 6s") {
		t.Errorf("%q", got)
	}
}

// The line is redrawn every second while nothing changes (the clock moves)
// and no more after Done.
func TestProgressHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the heartbeat")
	}
	sc := &screen{}
	p := NewProgress(sc, "check", "tensors")
	p.Start(10)
	time.Sleep(heartbeat + 300*time.Millisecond)
	sc.mu.Lock()
	n := len(sc.writes)
	sc.mu.Unlock()
	if n < 2 {
		t.Errorf("%d writes after a second: no heartbeat", n)
	}
	p.Done()
	sc.mu.Lock()
	n = len(sc.writes)
	sc.mu.Unlock()
	time.Sleep(heartbeat + 300*time.Millisecond)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.writes) != n {
		t.Errorf("drawn after Done: %q", sc.writes[n:])
	}
}

func TestProgressNil(t *testing.T) {
	var p *Progress
	p.Start(3)
	p.Set(1, 3)
	p.SetBytes(1, 2)
	p.Show("x")
	p.Note("y")
	p.Done()
	if p.Fit(80, false) != nil {
		t.Error("Fit on nil")
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 400 * time.Millisecond: "0s", 9 * time.Second: "9s",
		125 * time.Second: "2m05s", 3720 * time.Second: "1h02m", -time.Second: "0s", 200 * time.Hour: "200h"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
