package cmd

import (
	"context"
	"sync"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Every command reads remote inputs (hf://ORG/NAME[@REV][/PATH], a bare
// ORG/NAME[@REV], an https:// URL) through one source.Client per run, made
// on first use from the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE,
// HF_HUB_CACHE, HF_HOME) and the root's persistent flags --no-cache and
// --allow-http. Its network reads are shown on stderr (bytes and rate) when
// it is a terminal, as the note of the command's progress line.

// remoteFlags are the persistent flags of remote reads.
type remoteFlags struct {
	noCache   bool
	allowHTTP bool
}

func (f *remoteFlags) addPersistent(c *cobra.Command) {
	c.PersistentFlags().BoolVar(&f.noCache, "no-cache", false, "remote inputs: neither read nor write qkv's cache of fetched byte ranges")
	c.PersistentFlags().BoolVar(&f.allowHTTP, "allow-http", false, "remote inputs: allow plain http:// to hosts other than loopback")
}

// remoteEnv is one run's remote reading: the flags, the client (made on
// first use), and the progress line its reads are drawn on.
type remoteEnv struct {
	flags remoteFlags
	// options, when set, replaces source.EnvOptions (tests: the Hub
	// emulator, a cache folder).
	options func() source.Options

	once sync.Once
	cl   *source.Client
	err  error

	mu   sync.Mutex
	line *termui.Progress // the command's progress line, or the client's own
}

// client returns the run's client, made on first use. Its Progress draws
// on the streams' progress line when stderr is a terminal.
func (s *Streams) client() (*source.Client, error) {
	r := s.remoteEnv()
	r.once.Do(func() {
		o := source.EnvOptions()
		if r.options != nil {
			o = r.options()
		}
		o.NoCache = o.NoCache || r.flags.noCache
		o.AllowHTTP = o.AllowHTTP || r.flags.allowHTTP
		o.UserAgent = "qkv/" + Version
		if s.Progress {
			o.Progress = func(p source.Progress) { s.remoteProgress(p) }
		}
		cl, err := source.New(o)
		if err != nil {
			err = usageError("%v", err)
		}
		r.cl, r.err = cl, err
	})
	return r.cl, r.err
}

// remoteEnv returns the streams' remote state. NewRoot makes it; streams
// that a test hands to a run function directly get one on first use (before
// any goroutine reads remotely).
func (s *Streams) remoteEnv() *remoteEnv {
	if s.remote == nil {
		s.remote = &remoteEnv{}
	}
	return s.remote
}

// remoteProgress shows the client's reads: as the note of the command's
// progress line while one is drawn, else on a line of its own.
func (s *Streams) remoteProgress(p source.Progress) {
	r := s.remoteEnv()
	r.mu.Lock()
	line := r.line
	if line == nil {
		line = s.newLine("", "")
		r.line = line
	}
	r.mu.Unlock()
	note := "fetched " + termui.Bytes(p.Bytes)
	if p.Rate > 0 {
		note += ", " + termui.Bytes(int64(p.Rate)) + "/s"
	}
	line.Note(note)
}

// newLine is a progress line on stderr fitted to the terminal, or nil when
// stderr is not a terminal.
func (s *Streams) newLine(label, unit string) *termui.Progress {
	if !s.Progress {
		return nil
	}
	return termui.NewProgress(s.Err, label, unit).Fit(s.Width, s.ASCII)
}

// newProgress returns the progress line of a long command on stderr (nil,
// which draws nothing, when stderr is not a terminal or the command prints
// JSON... the caller decides that): label names the work, unit what Set
// counts. Call Start(total) at once so that it shows from the first
// second, Set as work finishes, and Done (deferred) at the end. Remote
// reads show as its note while it runs.
//
//	bar := newProgress(o.IO, "check", "tensors")
//	defer bar.Done()
//	bar.Start(len(tensors))
func newProgress(s *Streams, label, unit string) *termui.Progress {
	p := s.newLine(label, unit)
	if p == nil {
		return nil
	}
	r := s.remoteEnv()
	r.mu.Lock()
	if r.line != nil {
		r.line.Done() // the client's own line gives way
	}
	r.line = p
	r.mu.Unlock()
	return p
}

// newProgressLine returns a progress line for free messages (Show) on
// stderr when it is a terminal, else nil.
func newProgressLine(s *Streams) *termui.Progress { return newProgress(s, "", "") }

// clearProgress clears whatever progress line is drawn (at the end of a
// run, before the result or an error is printed).
func (s *Streams) clearProgress() {
	if s.remote == nil {
		return
	}
	r := s.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.line != nil {
		r.line.Done()
		r.line = nil
	}
}

type streamsKey struct{}

// withStreams puts the streams in ctx, so that openCheckpoint reads remote
// inputs through the run's client.
func withStreams(ctx context.Context, s *Streams) context.Context {
	return context.WithValue(ctx, streamsKey{}, s)
}

// streamsFrom returns the streams of the run, nil when ctx has none (a run
// function called by a test without Run).
func streamsFrom(ctx context.Context) *Streams {
	s, _ := ctx.Value(streamsKey{}).(*Streams)
	return s
}

// openOptions are formats.Options for a command's input: the run's
// client for a remote one, ctx bounding its reads.
func openOptions(ctx context.Context, path string, maxHeader int64) (formats.Options, error) {
	o := formats.Options{MaxHeaderBytes: maxHeader, Context: ctx}
	if s := streamsFrom(ctx); s != nil && source.IsRemote(path) {
		cl, err := s.client()
		if err != nil {
			return o, err
		}
		o.Source = cl
	}
	return o, nil
}

// Provenance is what every qkv.*/v1 document says about where its numbers
// come from: the checkpoint ("source", formats.SourceInfo), the qkv build
// ("qkv") and, for a remote input, what reading it cost ("io": requests,
// bytes fetched, bytes from qkv's cache). Embed it in a report struct, after
// "schema", and fill it with newProvenance(ck) when the work is done (the io
// counters then cover every read):
//
//	type lsReport struct {
//		Schema string `json:"schema"`
//		Provenance
//		...
//	}
type Provenance struct {
	Source formats.SourceInfo `json:"source"`
	QKV    buildinfo.Info     `json:"qkv"`
	IO     *source.IO         `json:"io,omitempty"`
}

// newProvenance returns the blocks for a report on ck.
func newProvenance(ck *formats.Checkpoint) Provenance {
	return Provenance{Source: ck.Source(), QKV: Build(), IO: ioOf(ck)}
}

// PairProvenance is Provenance for a report on two checkpoints (diff):
// "source_a", "source_b", "qkv" and "io" (one client reads both, so one io
// block, present when either input is remote).
type PairProvenance struct {
	SourceA formats.SourceInfo `json:"source_a"`
	SourceB formats.SourceInfo `json:"source_b"`
	QKV     buildinfo.Info     `json:"qkv"`
	IO      *source.IO         `json:"io,omitempty"`
}

// newPairProvenance returns the blocks for a report on a and b.
func newPairProvenance(a, b *formats.Checkpoint) PairProvenance {
	p := PairProvenance{SourceA: a.Source(), SourceB: b.Source(), QKV: Build(), IO: ioOf(a)}
	if p.IO == nil {
		p.IO = ioOf(b)
	}
	return p
}

// ioOf is ck's io block: nil for an input read without the network (a
// local path, the Hugging Face cache).
func ioOf(ck *formats.Checkpoint) *source.IO {
	if !ck.Remote() {
		return nil
	}
	in := ck.IO()
	return &in
}

// remoteHelp is the help text of remote inputs, shown by the root command.
const remoteHelp = `Every PATH may also be remote: hf://ORG/NAME[@REV][/PATH], a bare
ORG/NAME[@REV] that is not a local path (the Hugging Face cache is looked in
first), or an https:// URL of a .safetensors or .gguf file. Only headers and
the tensors a command needs are fetched, by HTTP range requests, and kept in
qkv's cache (--no-cache). HF_TOKEN authenticates, HF_ENDPOINT selects a
mirror, HF_HUB_OFFLINE=1 forbids the network.`
