package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/formats/tokenizer"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// maxTokenizeInput bounds the text read from stdin: tokenizing takes
// memory in proportion to the text (up to ~100x for one pathological
// 16 MB word), and the command is for prompts, not corpora.
const maxTokenizeInput = 16 << 20

type tokenizeReport struct {
	Schema       string             `json:"schema"`
	Source       formats.SourceInfo `json:"source"`
	QKV          buildinfo.Info     `json:"qkv"`
	IO           *source.IO         `json:"io,omitempty"`
	Tokenizer    string             `json:"tokenizer"` // gguf, tokenizer.json, tokenizer.model
	Model        string             `json:"model"`
	Pre          string             `json:"pre,omitempty"`
	VocabSize    int                `json:"vocab_size"`
	AddSpecial   bool               `json:"add_special"`
	ParseSpecial bool               `json:"parse_special"`
	BOS          *int               `json:"bos"`
	EOS          *int               `json:"eos"`
	AddedBOS     bool               `json:"added_bos"`
	AddedEOS     bool               `json:"added_eos"`
	Count        int                `json:"count"`
	IDs          []int              `json:"ids"`
	Pieces       []string           `json:"pieces"`
	// Texts: what each token stands for in text ("Ġthe" → " the"); a byte
	// token that is part of a UTF-8 character shows as U+FFFD.
	Texts    []string `json:"texts"`
	Warnings []string `json:"warnings"`

	rawTexts []string // Texts before the U+FFFD replacement, for the table
}

// TokenizeOptions are the options of qkv tokenize.
type TokenizeOptions struct {
	IO      *Streams
	Path    string
	Text    string // "-" reads standard input
	Special bool   // add special tokens and parse their text
	JSON    bool
}

// NewCmdTokenize builds qkv tokenize; runF (nil: tokenizeRun) does the work.
func NewCmdTokenize(s *Streams, runF func(context.Context, *TokenizeOptions) error) *cobra.Command {
	opts := &TokenizeOptions{IO: s}
	var noSpecial bool
	c := &cobra.Command{
		Use:   "tokenize PATH [--] TEXT",
		Short: "Tokenize text with the checkpoint's own tokenizer: ids and pieces",
		Long: `Tokenize TEXT with the tokenizer the checkpoint carries and print the token ids
and their pieces (the token texts as the vocabulary stores them).

PATH is a GGUF file (its tokenizer.ggml.* metadata), a Hugging Face model folder
or any of its files (tokenizer.json beside the weights, else tokenizer.model),
or a tokenizer.json or tokenizer.model file itself. TEXT "-" reads standard
input. Put -- before a TEXT that starts with a dash.

By default the model's special tokens are added (BOS/EOS, [CLS]/[SEP], the
post-processor's template) and special-token text in TEXT ("<s>", "<|eot_id|>")
becomes that token. --no-special does neither: no tokens are added and special
tokens' text is plain text (added tokens that are not special still match).

A tokenizer qkv does not implement (a tokenizer model, a pre-tokenizer, a
normalizer) is refused with exit status 3, naming it.`,
		Example: `  qkv tokenize model.gguf "The capital of France is"
  qkv tokenize ./Llama-3-8B --json -- "-1 is negative"
  qkv tokenize model.gguf --no-special "<s>" 
  cat prompt.txt | qkv tokenize model.gguf -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("tokenize takes PATH and TEXT (got %s)", termui.Plural(int64(len(args)), "argument"))
			}
			return nil
		},
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Path, opts.Text, opts.Special = args[0], args[1], !noSpecial
			return runOr(c, runF, tokenizeRun, opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.tokenize/v1)")
	c.Flags().BoolVar(&noSpecial, "no-special", false, "add no special tokens and treat special-token text as plain text")
	return c
}

// tokenizeRun tokenizes the text and prints the tokens.
func tokenizeRun(ctx context.Context, o *TokenizeOptions) error {
	s := o.IO
	text := o.Text
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(s.In, maxTokenizeInput+1))
		if err != nil {
			return inputError("reading standard input: %v", err)
		}
		if len(b) > maxTokenizeInput {
			return usageError("standard input is longer than %d bytes", maxTokenizeInput)
		}
		text = string(b)
	}
	rep, err := runTokenize(ctx, o.Path, text, o.Special)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err // a usage error of the remote client keeps its status
		}
		return &exitError{code: ExitInput, err: err}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(s.Err, "qkv: warning: "+termui.Visible(w))
	}
	if o.JSON {
		return termui.WriteJSON(s.Out, rep)
	}
	return rep.Render(s.Out, s.style())
}

// runTokenize opens the tokenizer at path and encodes text. A remote
// checkpoint (hf://, a Hub repository, a URL) is opened through the run's
// client and its tokenizer read through it.
func runTokenize(ctx context.Context, path, text string, special bool) (tokenizeReport, error) {
	var tok *tokenizer.Tokenizer
	var ck *formats.Checkpoint
	var err error
	if source.IsRemote(path) {
		if ck, err = openCheckpoint(ctx, path, 0); err != nil {
			return tokenizeReport{}, err
		}
		defer ck.Close()
		tok, err = tokenizer.FromCheckpoint(ck)
	} else {
		tok, err = tokenizer.Open(path)
	}
	if err != nil {
		return tokenizeReport{}, err
	}
	opts := tokenizer.EncodeOptions{AddSpecial: special, ParseSpecial: special}
	ids, err := tok.Encode(text, opts)
	if err != nil {
		return tokenizeReport{}, fmt.Errorf("%s: %v", path, err)
	}
	in := tok.Info
	rep := tokenizeReport{Schema: "qkv.tokenize/v1", Source: tokenizerSource(path, in, ck), QKV: Build(), Tokenizer: in.Source, Model: in.Model, Pre: in.Pre,
		VocabSize: in.VocabSize, AddSpecial: special, ParseSpecial: special,
		Count: len(ids), IDs: ids, Pieces: make([]string, len(ids)), Texts: make([]string, len(ids)), Warnings: in.Warnings}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	if in.BOS >= 0 {
		v := in.BOS
		rep.BOS = &v
	}
	if in.EOS >= 0 {
		v := in.EOS
		rep.EOS = &v
	}
	if ck != nil {
		rep.IO = ioOf(ck)
	}
	rep.AddedBOS = special && in.AddBOS && in.BOS >= 0
	rep.AddedEOS = special && in.AddEOS && in.EOS >= 0
	for i, id := range ids {
		rep.Pieces[i] = tok.Piece(id)
		raw := tok.Text(id)
		rep.rawTexts = append(rep.rawTexts, raw)
		rep.Texts[i] = strings.ToValidUTF8(raw, "\uFFFD")
	}
	return rep, nil
}

// tokenizerSource is the "source" block of a tokenize document: the input
// and the tokenizer file read (its name relative to the input's folder);
// for a remote checkpoint ck, its source with the tokenizer's kind as the
// format.
func tokenizerSource(path string, in tokenizer.Info, ck *formats.Checkpoint) formats.SourceInfo {
	if ck != nil {
		src := ck.Source()
		src.Format = in.Source
		return src
	}
	src := formats.SourceInfo{Input: path, Kind: "local", Format: in.Source, Files: []formats.SourceFile{}}
	if in.Path == "" {
		return src
	}
	name := filepath.Base(in.Path)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		if rel, err := filepath.Rel(path, in.Path); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	var size int64
	if st, err := os.Stat(in.Path); err == nil {
		size = st.Size()
	}
	src.Files = append(src.Files, formats.SourceFile{Name: filepath.ToSlash(name), Size: size})
	return src
}

// Render writes a summary line, the tokens as a table and their ids, laid
// out for st's width: long pieces and texts are cut in the middle, and a
// long list of tokens on a wide terminal is set in side-by-side blocks
// (down, then across) to use the width instead of the screen's height.
func (rep tokenizeReport) Render(w io.Writer, st termui.Style) error {
	cols, tx := st.Cols(), textFor(st)
	var b strings.Builder
	desc := rep.Model
	if rep.Pre != "" {
		desc += ", pre-tokenizer " + rep.Pre
	}
	added := []string{}
	if rep.AddedBOS {
		added = append(added, "BOS")
	}
	if rep.AddedEOS {
		added = append(added, "EOS")
	}
	extra := ""
	if len(added) > 0 {
		extra = ", " + strings.Join(added, " and ") + " added"
	} else if !rep.AddSpecial {
		extra = ", no special tokens"
	}
	b.WriteString(termui.Title(termui.Wrap(tx(termui.Visible(fmt.Sprintf("%s tokenizer (%s), %d tokens in the vocabulary: %d tokens%s",
		rep.Tokenizer, desc, rep.VocabSize, rep.Count, extra))), cols, "  "), st.Styled))
	rows := make([][]string, len(rep.IDs))
	for i, id := range rep.IDs {
		rows[i] = []string{strconv.Itoa(i), strconv.Itoa(id), tx(termui.Visible(rep.Pieces[i])), tx(strconv.Quote(rep.rawTexts[i]))}
	}
	b.WriteString(tokenBlocks(rows, st))
	ids := make([]string, len(rep.IDs))
	for i, id := range rep.IDs {
		ids[i] = strconv.Itoa(id)
	}
	b.WriteString(termui.Wrap("ids: "+strings.Join(ids, " "), cols, "     ") + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// tokenBlocks sets the token table in as many side-by-side blocks as the
// width holds (one below minBlockRows rows a block), each a termui table.
func tokenBlocks(rows [][]string, st termui.Style) string {
	const minBlockRows = 8
	headers := []string{"#", "id", "piece", "text"}
	right := []bool{true, true, false, false}
	table := func(rs [][]string, width int) string {
		var b strings.Builder
		termui.TableLayout{Headers: headers, Right: right, Styled: st.Styled, Width: width, ASCII: st.ASCII, Shrink: []int{3, 2}}.
			Write(&b, len(rs), func(i int) []string { return rs[i] })
		return b.String()
	}
	one := table(rows, st.Cols())
	blockW := 0
	for _, line := range strings.Split(strings.TrimSuffix(one, "\n"), "\n") {
		blockW = max(blockW, termui.Width(line))
	}
	const gap = 4
	n := min((st.Cols()+gap)/(blockW+gap), len(rows)/minBlockRows)
	if n < 2 {
		return one
	}
	per := (len(rows) + n - 1) / n
	var blocks [][]string
	widths := make([]int, 0, n)
	for i := 0; i < len(rows); i += per {
		lines := strings.Split(strings.TrimSuffix(table(rows[i:min(i+per, len(rows))], blockW), "\n"), "\n")
		blocks = append(blocks, lines)
		wd := 0
		for _, l := range lines {
			wd = max(wd, termui.Width(l))
		}
		widths = append(widths, wd)
	}
	var b strings.Builder
	for li := 0; ; li++ {
		any := false
		var line strings.Builder
		for k, bl := range blocks {
			cell := ""
			if li < len(bl) {
				cell, any = bl[li], true
			}
			if k > 0 {
				line.WriteString(strings.Repeat(" ", gap))
			}
			line.WriteString(cell)
			if k < len(blocks)-1 {
				line.WriteString(strings.Repeat(" ", widths[k]-termui.Width(cell)))
			}
		}
		if !any {
			break
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}
