package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// VerifySchema is the schema of qkv verify --json.
const VerifySchema = "qkv.verify/v1"

type verifyReport struct {
	Schema   string             `json:"schema"`
	Source   formats.SourceInfo `json:"source"`
	QKV      buildinfo.Info     `json:"qkv"`
	IO       source.IO          `json:"io"`
	Passed   bool               `json:"passed"`
	Manifest string             `json:"manifest,omitempty"`
	Compared int                `json:"compared"` // files whose hash was compared with an expected one
	Bytes    int64              `json:"bytes_hashed"`
	Files    []source.FileCheck `json:"files"`
}

// VerifyOptions are the options of qkv verify.
type VerifyOptions struct {
	IO            *Streams
	Input         string // PATH, REPO or URL
	Manifest      string // compare with this manifest ("": none)
	WriteManifest string // write one here ("-": standard output)
	JSON          bool
	Parallel      int
}

// NewCmdVerify builds qkv verify; runF (nil: verifyRun) does the work.
func NewCmdVerify(s *Streams, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{IO: s}
	c := &cobra.Command{
		Use:   "verify PATH|REPO|URL",
		Short: "Check that a checkpoint's files are intact: SHA-256 against the Hub or a manifest",
		Long: `Compute the SHA-256 of every file of a checkpoint (in parallel, at disk speed)
and compare it with what the file should be: the Hugging Face Hub's LFS object
id (and git blob id for small files), the blob name in the Hugging Face cache,
or a manifest written earlier by 'qkv verify --write-manifest'. A file that
differs, is shorter or longer, or is missing fails, naming the file: exit 1.

PATH is a local folder or file; REPO is hf://ORG/NAME[@REV][/PATH] or a bare
ORG/NAME[@REV] (looked up in the Hugging Face cache first; a repository read
over the network is streamed, not cached); URL is an https:// URL of one file.
A plain local folder has nothing to compare with unless --manifest is given:
its files are listed as unverified, with their hashes.

--write-manifest FILE writes the files' sizes and hashes as JSON (schema
qkv.manifest/v1; "-" for standard output) — only when nothing failed.`,
		Example: `  qkv verify ~/.cache/huggingface/hub/models--Qwen--Qwen3-8B/snapshots/*/
  qkv verify Qwen/Qwen3-0.6B
  qkv verify ./model --write-manifest model.manifest.json
  qkv verify ./model --manifest model.manifest.json --json`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Manifest != "" && opts.WriteManifest != "" {
				return usageError("--manifest and --write-manifest cannot be used together")
			}
			if opts.Parallel < 0 {
				return usageError("--parallel must be positive, not %d", opts.Parallel)
			}
			if opts.WriteManifest != "" {
				if err := checkOutput("--write-manifest", opts.WriteManifest); err != nil {
					return err
				}
			}
			opts.Input = args[0]
			return runOr(c, runF, verifyRun, opts)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Manifest, "manifest", "", "compare with this manifest (written by --write-manifest)")
	f.StringVar(&opts.WriteManifest, "write-manifest", "", `write the files' sizes and SHA-256 to FILE ("-": standard output)`)
	f.BoolVar(&opts.JSON, "json", false, "print JSON (schema "+VerifySchema+")")
	f.IntVar(&opts.Parallel, "parallel", 0, "files hashed at once (default: CPUs, at most 4)")
	return c
}

// verifyRun hashes the files and compares them.
func verifyRun(ctx context.Context, o *VerifyOptions) error {
	s := o.IO
	var m *source.Manifest
	if o.Manifest != "" {
		b, err := readManifestFile(o.Manifest)
		if err != nil {
			return &exitError{code: ExitInput, err: fmt.Errorf("--manifest %s: %v", o.Manifest, err)}
		}
		if m, err = source.ParseManifest(b); err != nil {
			return &exitError{code: ExitInput, err: fmt.Errorf("--manifest %s: %v", o.Manifest, err)}
		}
	}
	prog := newProgressLine(s)
	defer prog.Done()
	// Hashing reports its own progress; network reads show as its note.
	cl, err := s.client()
	if err != nil {
		return err
	}
	tg, err := cl.Resolve(ctx, o.Input)
	if err != nil {
		return &exitError{code: ExitInput, err: err}
	}
	if tg.Kind == source.KindLocal {
		if _, err := os.Stat(o.Input); err != nil {
			return &exitError{code: ExitInput, err: fmt.Errorf("%s: %v", o.Input, statCause(err))}
		}
	}
	vopts := source.VerifyOptions{Manifest: m, Parallel: o.Parallel}
	if prog != nil {
		vopts.Progress = func(p source.HashProgress) {
			prog.Show(fmt.Sprintf("hashed %s of %s  %s/s", termui.Bytes(p.Bytes), termui.Bytes(p.Total), termui.Bytes(int64(p.Rate))))
		}
	}
	skip := map[string]bool{}
	for _, p := range []string{o.Manifest, o.WriteManifest} {
		if p != "" && p != "-" && tg.Kind == source.KindLocal {
			if name, ok := inDir(tg.Dir.Name(), p); ok {
				skip[name] = true // the manifest itself
			}
		}
	}
	if tg.File != "" {
		only := tg.File
		vopts.Skip = func(name string) bool { return name != only }
		if m != nil {
			var keep []source.ManifestFile
			for _, f := range m.Files {
				if f.Path == only {
					keep = append(keep, f)
				}
			}
			if keep == nil {
				return &exitError{code: ExitInput, err: fmt.Errorf("--manifest %s does not list %s", o.Manifest, only)}
			}
			vopts.Manifest = &source.Manifest{Schema: m.Schema, Files: keep}
		}
	} else if len(skip) > 0 {
		vopts.Skip = func(name string) bool { return skip[name] }
	}

	var res *source.VerifyResult
	var man *source.Manifest
	if o.WriteManifest != "" {
		man, res, err = source.WriteManifest(ctx, tg.Dir, vopts)
	} else {
		res, err = source.Verify(ctx, tg.Dir, vopts)
	}
	prog.Done()
	if err != nil {
		return &exitError{code: ExitInput, err: err}
	}
	if res.Files == nil {
		res.Files = []source.FileCheck{} // an empty folder: [], not null
	}
	rep := verifyReport{Schema: VerifySchema, Source: verifySource(tg, res.Files), QKV: Build(), IO: cl.IO(),
		Manifest: o.Manifest, Passed: res.Passed, Compared: res.Compared, Bytes: res.Bytes, Files: res.Files}
	out := s.Out
	if o.WriteManifest == "-" {
		out = s.Err // the manifest is the result on stdout
	}
	if o.JSON && o.WriteManifest != "-" {
		if err := termui.WriteJSON(out, rep); err != nil {
			return err
		}
	} else {
		// stderr carries the table when stdout carries the manifest: plain.
		if err := (verifyView{&rep, tg.Display()}).Render(out, termui.Style{Styled: s.Styled && o.WriteManifest != "-", Width: s.Width, ASCII: s.ASCII}); err != nil {
			return err
		}
	}
	if !res.Passed {
		msg := ""
		if o.WriteManifest != "" {
			msg = "not writing the manifest: some files failed"
		}
		return &findingsError{msg: msg}
	}
	if man != nil {
		if err := saveManifest(s.Out, o.WriteManifest, man); err != nil {
			var oe *outfile.Error
			if errors.As(err, &oe) {
				return flagged("--write-manifest", err)
			}
			return &exitError{code: ExitInput, err: fmt.Errorf("--write-manifest %s: %v", o.WriteManifest, err)}
		}
		if o.WriteManifest != "-" && !o.JSON {
			fmt.Fprintf(s.Out, "wrote %s (%d files)\n", verifySafe(o.WriteManifest), len(man.Files))
		}
	}
	return nil
}

// verifySource is the "source" block of a verify document: the input, where
// it resolved, and the files hashed. Format is "": verify reads files of any
// kind without opening them as a checkpoint.
func verifySource(tg *source.Target, files []source.FileCheck) formats.SourceInfo {
	src := formats.SourceInfo{Input: tg.Input, Kind: tg.Kind.String(), URL: tg.URL, Files: []formats.SourceFile{}}
	if tg.Kind == source.KindHub || tg.Kind == source.KindHFCache {
		src.Repo, src.Revision, src.Commit = tg.Repo, tg.Revision, tg.Commit
	}
	for _, f := range files {
		if f.Size >= 0 && f.Status != source.StatusMissing {
			src.Files = append(src.Files, formats.SourceFile{Name: f.Path, Size: f.Size})
		}
	}
	return src
}

// inDir reports whether path p is directly in folder dir, and its name there.
func inDir(dir, p string) (string, bool) {
	ad, err1 := filepath.Abs(dir)
	ap, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil || filepath.Dir(ap) != ad {
		return "", false
	}
	return filepath.Base(ap), true
}

// maxManifestFile bounds a manifest read from disk.
const maxManifestFile = 64 << 20

func readManifestFile(p string) ([]byte, error) {
	return infile.Read(p, maxManifestFile)
}

// saveManifest writes the manifest through outfile (a temporary file
// renamed into place, removed on failure or a signal; only regular files),
// or to stdout for "-".
func saveManifest(stdout io.Writer, p string, m *source.Manifest) error {
	f, err := outfile.Create(p, stdout)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := m.Write(f); err != nil {
		return err
	}
	return f.Commit()
}

// verifyView is the verify report as text; display names the input.
type verifyView struct {
	rep     *verifyReport
	display string
}

// Render writes the verdict, what was verified against what, the files'
// table and what failed, laid out for st's width: long file names are cut
// in the middle, the AGAINST column is left out when there is no room, and
// the hashes are whole when the terminal is wide enough for them.
func (v verifyView) Render(w io.Writer, st termui.Style) error {
	rep, display, styled, cols, tx := v.rep, v.display, st.Styled, st.Cols(), textFor(st)
	th := termui.NewTheme(w, st)
	var b strings.Builder
	verdict := verifyVerdict(rep)
	if !rep.Passed {
		b.WriteString(th.Bad(termui.Wrap(tx(verdict), cols, "  ")) + "\n")
	} else {
		b.WriteString(termui.Title(termui.Wrap(tx(verdict), cols, "  "), styled))
	}
	title := "verify " + verifySafe(display) + " (" + rep.Source.Kind
	if c := rep.Source.Commit; c != "" {
		title += ", commit " + c[:min(12, len(c))]
	}
	if rep.Manifest != "" {
		title += ", manifest " + verifySafe(rep.Manifest)
	}
	b.WriteString(termui.Dim(termui.Wrap(tx(title+")"), cols, "  "), styled) + "\n\n")
	headers := []string{"STATUS", "FILE", "SIZE", "SHA256", "AGAINST"}
	// Whole hashes when the table has room for them.
	widths := []int{len("STATUS"), len("FILE"), len("SIZE"), 64, len("AGAINST")}
	for _, f := range rep.Files {
		widths[0] = max(widths[0], len(verifyStatusWord(f.Status)))
		widths[1] = max(widths[1], termui.Width(tx(verifySafe(f.Path))))
		widths[2] = max(widths[2], len(termui.Bytes(f.Size)))
		widths[4] = max(widths[4], len(f.Against))
	}
	_, total := termui.FitColumns(widths, tableGap(st), tableEdge(st), cols, nil)
	whole := total <= cols
	rows := make([][]string, 0, len(rep.Files))
	for _, f := range rep.Files {
		size, sum := "-", "-"
		if f.Size >= 0 {
			size = termui.Bytes(f.Size)
		}
		if f.SHA256 != "" {
			sum = f.SHA256
			if !whole {
				sum = f.SHA256[:12] + termui.Ellipsis(st.ASCII)
			}
		}
		rows = append(rows, []string{verifyStatusWord(f.Status), tx(verifySafe(f.Path)), size, sum, f.Against})
	}
	termui.TableLayout{Headers: headers, Right: []bool{false, false, true, false, false}, Styled: styled, Width: cols, ASCII: st.ASCII,
		Drop: []int{4}, Shrink: []int{1},
		Tone: func(i, col int) termui.Tone {
			switch {
			case col != 0:
				return termui.ToneNone
			case rep.Files[i].Failed():
				return termui.ToneBad
			case rep.Files[i].Status == source.StatusOK:
				return termui.ToneGood
			}
			return termui.ToneNone
		}}.Write(&b, len(rows), func(i int) []string { return rows[i] })
	for _, f := range rep.Files {
		if f.Failed() {
			b.WriteString(termui.Wrap(tx(verifySafe(f.Path)+": "+verifySafe(f.Message)), cols, "    ") + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tableGap and tableEdge are the columns a termui table takes between two
// columns and for its outer border.
func tableGap(st termui.Style) int {
	if st.Styled {
		return 3
	}
	return 2
}

func tableEdge(st termui.Style) int {
	if st.Styled {
		return 4
	}
	return 0
}

// verifyVerdict is the report's one-line summary: what failed, else
// whether every file matched, else how many had nothing to compare with.
func verifyVerdict(rep *verifyReport) string {
	failed, unverified, ok := 0, 0, 0
	var names []string
	for _, f := range rep.Files {
		switch {
		case f.Failed():
			failed++
			if len(names) < 3 {
				names = append(names, verifySafe(f.Path)+" ("+verifyStatusWord(f.Status)+")")
			}
		case f.Status == source.StatusUnverified:
			unverified++
		case f.Status == source.StatusOK:
			ok++
		}
	}
	n, hashed := len(rep.Files), termui.Bytes(rep.Bytes)
	switch {
	case failed > 0:
		more := ""
		if failed > len(names) {
			more = fmt.Sprintf(" and %d more", failed-len(names))
		}
		return fmt.Sprintf("FAIL: %d of %s failed: %s%s; %s hashed", failed, termui.Plural(int64(n), "file"), strings.Join(names, ", "), more, hashed)
	case n == 0:
		return "no files to verify"
	case unverified == 0:
		return fmt.Sprintf("ok: %s match what they should be (%s hashed)", termui.Plural(int64(ok), "file"), hashed)
	case ok == 0:
		return fmt.Sprintf("%s hashed (%s), none verified: nothing to compare with (give --manifest)", termui.Plural(int64(n), "file"), hashed)
	}
	return fmt.Sprintf("%d of %s verified, %d with nothing to compare with (give --manifest); %s hashed", ok, termui.Plural(int64(n), "file"), unverified, hashed)
}

func verifyStatusWord(s string) string {
	switch s {
	case source.StatusOK:
		return "ok"
	case source.StatusMismatch:
		return "MISMATCH"
	case source.StatusSize:
		return "SIZE"
	case source.StatusMissing:
		return "MISSING"
	case source.StatusError:
		return "ERROR"
	}
	return s
}

// verifySafe makes a name from a file system or a server safe for a
// terminal (termui's sanitiser: escapes shown, never acted on).
func verifySafe(s string) string { return termui.Clean(s) }
