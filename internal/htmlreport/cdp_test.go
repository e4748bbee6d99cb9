//go:build browser

package htmlreport

// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe:
// Chromium reads commands from file descriptor 3 and writes replies and
// events to descriptor 4, each message JSON terminated by a NUL byte. No
// port, no websocket, nothing to install beyond Chromium itself.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

type cdpMsg struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

type browser struct {
	cmd     *exec.Cmd
	in      io.WriteCloser // our end of Chromium's fd 3
	mu      sync.Mutex
	nextID  int64
	waiting map[int64]chan cdpMsg
	events  chan cdpMsg
	done    chan struct{}
	stderr  bytes.Buffer
	profile string
}

// startBrowser starts headless Chromium with the flags that work on a
// machine without network, and a fresh profile.
func startBrowser(exe string) (*browser, error) {
	profile, err := os.MkdirTemp("", "qkv-chromium-")
	if err != nil {
		return nil, err
	}
	toR, toW, err := os.Pipe() // we write, Chromium reads (fd 3)
	if err != nil {
		return nil, err
	}
	fromR, fromW, err := os.Pipe() // Chromium writes (fd 4), we read
	if err != nil {
		return nil, err
	}
	b := &browser{in: toW, waiting: map[int64]chan cdpMsg{}, events: make(chan cdpMsg, 4096), done: make(chan struct{}), profile: profile}
	b.cmd = exec.Command(exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	b.cmd.ExtraFiles = []*os.File{toR, fromW}
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	toR.Close()
	fromW.Close()
	go b.read(fromR)
	return b, nil
}

func (b *browser) read(r io.Reader) {
	defer close(b.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMsg
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.events <- m:
		default: // nobody reads events this fast: drop rather than block replies
		}
	}
}

// call sends a command (to a page when session is set) and waits for its
// reply; result, when non-nil, receives the reply's result.
func (b *browser) call(ctx context.Context, session, method string, params any, result any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		p = []byte("{}")
	}
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(cdpMsg{ID: id, Method: method, Params: p, SessionID: session})
	if _, err := b.in.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.done:
		return fmt.Errorf("%s: browser exited: %s", method, b.stderr.String())
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// waitEvent returns the first event of the session named method, handing
// every other event to other.
func (b *browser) waitEvent(ctx context.Context, session, method string, other func(cdpMsg)) (cdpMsg, error) {
	for {
		select {
		case m := <-b.events:
			if m.Method == method && m.SessionID == session {
				return m, nil
			}
			other(m)
		case <-b.done:
			return cdpMsg{}, errors.New("browser exited")
		case <-ctx.Done():
			return cdpMsg{}, fmt.Errorf("waiting for %s: %w", method, ctx.Err())
		}
	}
}

// drain hands every queued event to f, waiting quiet for a moment so that
// late console messages arrive.
func (b *browser) drain(quiet time.Duration, f func(cdpMsg)) {
	for {
		select {
		case m := <-b.events:
			f(m)
		case <-time.After(quiet):
			return
		}
	}
}

func (b *browser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.call(ctx, "", "Browser.close", nil, nil)
	b.in.Close()
	wait := make(chan struct{})
	go func() { b.cmd.Wait(); close(wait) }()
	select {
	case <-wait:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-wait
	}
	os.RemoveAll(b.profile)
}
