package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxJSONBytes bounds the tokenizer.json files FromFile reads.
const MaxJSONBytes = 1 << 30

// FromFile reads a Hugging Face tokenizer.json.
func FromFile(path string) (*Tokenizer, error) {
	loadTables()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxJSONBytes {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d a tokenizer.json may have", path, st.Size(), MaxJSONBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxJSONBytes+1))
	if err != nil {
		return nil, err
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Info.Path = path
	t.checkConfig(filepath.Join(filepath.Dir(path), "tokenizer_config.json"))
	return t, nil
}

// checkConfig warns when tokenizer_config.json asks for BOS/EOS differently
// from tokenizer.json's post-processor: transformers' Llama and Gemma
// tokenizer classes rebuild the template from these flags, others do not,
// and qkv follows tokenizer.json.
func (t *Tokenizer) checkConfig(path string) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > maxConfigBytes {
		return
	}
	t.checkConfigData(data)
}

// maxConfigBytes bounds the tokenizer_config.json read for that check.
const maxConfigBytes = 64 << 20

// checkConfigData is checkConfig of tokenizer_config.json's contents.
func (t *Tokenizer) checkConfigData(data []byte) {
	var cfg struct {
		AddBOS *bool  `json:"add_bos_token"`
		AddEOS *bool  `json:"add_eos_token"`
		Class  string `json:"tokenizer_class"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return
	}
	for _, c := range []struct {
		name string
		cfg  *bool
		ours bool
	}{{"add_bos_token", cfg.AddBOS, t.Info.AddBOS}, {"add_eos_token", cfg.AddEOS, t.Info.AddEOS}} {
		if c.cfg != nil && *c.cfg != c.ours {
			t.Info.Warnings = append(t.Info.Warnings, fmt.Sprintf("tokenizer_config.json sets %s = %v (tokenizer class %q) but tokenizer.json's post-processor does the opposite; qkv follows tokenizer.json", c.name, *c.cfg, cfg.Class))
		}
	}
}

// hfNode is one polymorphic section of tokenizer.json (normalizer,
// pre_tokenizer, post_processor, decoder, model): its "type" plus the rest.
type hfNode map[string]json.RawMessage

func (n hfNode) typ() string {
	var s string
	_ = json.Unmarshal(n["type"], &s)
	return s
}

func (n hfNode) str(key string) (string, bool) {
	raw, ok := n[key]
	if !ok || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func (n hfNode) boolean(key string, def bool) bool {
	raw, ok := n[key]
	if !ok || string(raw) == "null" {
		return def
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		return def
	}
	return b
}

func (n hfNode) list(key string) ([]hfNode, error) {
	raw, ok := n[key]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var out []hfNode
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return out, nil
}

type hfAdded struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfFile struct {
	AddedTokens   []hfAdded `json:"added_tokens"`
	Normalizer    hfNode    `json:"normalizer"`
	PreTokenizer  hfNode    `json:"pre_tokenizer"`
	PostProcessor hfNode    `json:"post_processor"`
	Decoder       hfNode    `json:"decoder"`
	Model         hfNode    `json:"model"`
}

// hfPipeline is a tokenizer.json's normalizer and pre-tokenizer.
type hfPipeline struct {
	normalizers []func(string) string
	pre         []hfPreStage
	model       string
	unk         int32
	decoders    []func([]string) []string
	decodeErr   error
	post        []int // template: -1 = the sequence, else a special id
	byteLevel   bool  // a ByteLevel pre-tokenizer maps bytes to the GPT-2 alphabet
}

// hfPreStage transforms one split into splits. atStart: the split begins
// the input (Metaspace's prepend_scheme "first").
type hfPreStage func(s string, atStart bool, out []string) []string

// FromJSON reads a tokenizer.json document.
func FromJSON(data []byte) (*Tokenizer, error) {
	loadTables()
	var f hfFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if f.Model == nil {
		return nil, fmt.Errorf("tokenizer.json has no model")
	}
	mtype := f.Model.typ()
	if mtype == "" {
		// Old files omit the model type; BPE has merges, WordPiece has a
		// continuing_subword_prefix, WordLevel neither.
		switch {
		case f.Model["merges"] != nil:
			mtype = "BPE"
		case f.Model["continuing_subword_prefix"] != nil:
			mtype = "WordPiece"
		case f.Model["vocab"] != nil:
			mtype = "WordLevel"
		}
	}
	t := &Tokenizer{Info: Info{Source: "tokenizer.json", Model: mtype, BOS: -1, EOS: -1, UNK: -1, SEP: -1, CLS: -1, PAD: -1}}
	hp := &hfPipeline{model: mtype, unk: -1}
	t.hf = hp

	switch mtype {
	case "BPE", "WordPiece", "WordLevel":
	case "Unigram":
		return nil, unsupported("tokenizer.json model \"Unigram\" is not implemented")
	default:
		return nil, unsupported("tokenizer.json model %q is not implemented", mtype)
	}

	// Vocabulary: the model's, then the added tokens.
	var vocab map[string]int64
	if err := json.Unmarshal(f.Model["vocab"], &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json model.vocab: %w", err)
	}
	size := int64(0)
	for s, id := range vocab {
		if id < 0 || id >= maxVocab {
			return nil, fmt.Errorf("tokenizer.json: token %q has id %d (expected 0 to %d)", s, id, maxVocab-1)
		}
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocab {
			return nil, fmt.Errorf("tokenizer.json: added token %q has id %d", a.Content, a.ID)
		}
		size = max(size, a.ID+1)
	}
	entries := int64(len(vocab) + len(f.AddedTokens))
	if size > 2*entries+1024 {
		return nil, fmt.Errorf("tokenizer.json: ids go up to %d for %d tokens", size-1, entries)
	}
	t.tokens = make([]string, size)
	t.types = make([]TokenType, size)
	t.scores = make([]float32, size)
	filled := make([]bool, size)
	for s, id := range vocab {
		if filled[id] && t.tokens[id] != s {
			return nil, fmt.Errorf("tokenizer.json: tokens %q and %q both have id %d", t.tokens[id], s, id)
		}
		t.tokens[id], filled[id] = s, true
		t.types[id] = TypeNormal
	}
	for _, a := range f.AddedTokens {
		if filled[a.ID] && t.tokens[a.ID] != a.Content {
			return nil, fmt.Errorf("tokenizer.json: added token %q has id %d, which is %q in the vocabulary", a.Content, a.ID, t.tokens[a.ID])
		}
		t.tokens[a.ID], filled[a.ID] = a.Content, true
		if a.Special {
			t.types[a.ID] = TypeControl
		} else {
			t.types[a.ID] = TypeUserDefined
		}
	}
	holes := 0
	for i, ok := range filled {
		if !ok {
			holes++
			t.tokens[i] = fmt.Sprintf("[EMPTY_%d]", i)
			t.types[i] = TypeUnused
		}
	}
	if holes > 0 {
		t.Info.Warnings = append(t.Info.Warnings, fmt.Sprintf("%d ids have no token", holes))
	}
	t.Info.VocabSize = len(t.tokens)
	t.byText = make(map[string]int32, len(t.tokens))
	for i, s := range t.tokens {
		if filled[i] {
			if prev, dup := t.byText[s]; dup && t.types[i] != TypeNormal {
				_ = prev // an added token repeating a vocabulary token keeps the vocabulary id for lookups
				continue
			}
			t.byText[s] = int32(i)
		}
		if len(s) > t.maxToken {
			t.maxToken = len(s)
		}
	}

	// Added tokens are matched in the raw text: special ones with
	// ParseSpecial, the others always.
	for _, a := range f.AddedTokens {
		t.specials.add(specialToken{text: a.Content, id: int32(a.ID), always: !a.Special,
			lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord})
		if a.Normalized && !a.Special && f.Normalizer != nil {
			t.Info.Warnings = append(t.Info.Warnings, fmt.Sprintf("added token %q is matched before normalization (its \"normalized\": true is not modelled)", a.Content))
		}
	}
	t.specials.build()

	var err error
	if f.Normalizer != nil {
		if hp.normalizers, err = buildNormalizer(f.Normalizer); err != nil {
			return nil, err
		}
	}
	byteLevelPre := false
	if f.PreTokenizer != nil {
		if hp.pre, err = buildPre(f.PreTokenizer, &byteLevelPre); err != nil {
			return nil, err
		}
		t.Info.Pre = describeNode(f.PreTokenizer)
	}

	unkName, _ := f.Model.str("unk_token")
	if unkName != "" {
		id, ok := t.byText[unkName]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: unk_token %q is not in the vocabulary", unkName)
		}
		hp.unk = id
		t.Info.UNK = int(id)
	}

	switch mtype {
	case "BPE":
		if raw, ok := f.Model["dropout"]; ok && string(raw) != "null" {
			var d float64
			if json.Unmarshal(raw, &d) == nil && d > 0 {
				return nil, unsupported("BPE dropout %g (random merges) is not modelled", d)
			}
		}
		cont, _ := f.Model.str("continuing_subword_prefix")
		end, _ := f.Model.str("end_of_word_suffix")
		m := &bpeModel{merges: map[uint64]mergeVal{}, unk: hp.unk, fuseUnk: f.Model.boolean("fuse_unk", false),
			byteFallback: f.Model.boolean("byte_fallback", false), ignoreMerges: f.Model.boolean("ignore_merges", false),
			contPrefix: cont, endSuffix: end, cache: map[string][]int32{}}
		m.findByteTokens(t)
		var merges []json.RawMessage
		if raw, ok := f.Model["merges"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &merges); err != nil {
				return nil, fmt.Errorf("tokenizer.json model.merges: %w", err)
			}
		}
		for i, raw := range merges {
			var a, b string
			var s string
			if json.Unmarshal(raw, &s) == nil {
				k := strings.IndexByte(s, ' ')
				if k < 0 {
					return nil, fmt.Errorf("tokenizer.json merge %d %q has no space", i, s)
				}
				a, b = s[:k], s[k+1:]
			} else {
				var pair []string
				if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
					return nil, fmt.Errorf("tokenizer.json merge %d is neither \"a b\" nor [a, b]", i)
				}
				a, b = pair[0], pair[1]
			}
			merged := a + b
			if cont != "" && strings.HasPrefix(b, cont) {
				merged = a + b[len(cont):]
			}
			ai, ok1 := t.byText[a]
			bi, ok2 := t.byText[b]
			ci, ok3 := t.byText[merged]
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("tokenizer.json merge %d (%q, %q): a part or the result is not in the vocabulary", i, a, b)
			}
			if _, dup := m.merges[mergeKey(ai, bi)]; !dup {
				m.merges[mergeKey(ai, bi)] = mergeVal{rank: int32(i), id: ci}
			}
		}
		t.bpe = m
	case "WordPiece":
		cont, ok := f.Model.str("continuing_subword_prefix")
		if !ok {
			cont = "##"
		}
		maxChars := 100
		if raw, ok := f.Model["max_input_chars_per_word"]; ok {
			_ = json.Unmarshal(raw, &maxChars)
		}
		if hp.unk < 0 {
			return nil, fmt.Errorf("tokenizer.json: a WordPiece model without unk_token")
		}
		t.wpm = &wpmModel{contPrefix: cont, unk: hp.unk, maxChars: maxChars}
		t.wpm.indexContinuations(t)
	case "WordLevel":
	}
	hp.byteLevel = byteLevelPre

	if f.PostProcessor != nil {
		if hp.post, err = buildPost(t, f.PostProcessor); err != nil {
			return nil, err
		}
	}
	for i, v := range hp.post {
		if v < 0 {
			continue
		}
		if i == 0 {
			t.Info.AddBOS, t.Info.BOS = true, v
		} else if i == len(hp.post)-1 {
			t.Info.AddEOS, t.Info.EOS = true, v
		}
	}
	if f.Decoder != nil {
		hp.decoders, hp.decodeErr = buildDecoder(f.Decoder)
	}
	t.encodeFragment = hfEncodeFragment
	t.wrap = func(t *Tokenizer, ids []int) []int {
		if len(t.hf.post) == 0 {
			return ids
		}
		out := make([]int, 0, len(ids)+len(t.hf.post))
		for _, v := range t.hf.post {
			if v < 0 {
				out = append(out, ids...)
			} else {
				out = append(out, v)
			}
		}
		return out
	}
	t.decode = hfDecode
	return t, nil
}

// describeNode summarises a section as its type, with nested types.
func describeNode(n hfNode) string {
	typ := n.typ()
	for _, key := range []string{"pretokenizers", "normalizers"} {
		if subs, err := n.list(key); err == nil && len(subs) > 0 {
			var parts []string
			for _, s := range subs {
				parts = append(parts, describeNode(s))
			}
			return typ + "[" + strings.Join(parts, ", ") + "]"
		}
	}
	return typ
}

func hfEncodeFragment(t *Tokenizer, text string, _, atStart bool, out []int) ([]int, error) {
	hp := t.hf
	for _, n := range hp.normalizers {
		text = n(text)
	}
	words := []string{text}
	if text == "" {
		words = nil
	}
	var next []string
	for _, st := range hp.pre {
		next = next[:0]
		for i, w := range words {
			next = st(w, atStart && i == 0, next)
		}
		words, next = next, words
	}
	var err error
	var scratch []byte
	for _, w := range words {
		if w == "" {
			continue
		}
		switch hp.model {
		case "BPE":
			if out, err = t.bpe.encodeWord(t, w, out, &scratch); err != nil {
				return nil, err
			}
		case "WordPiece":
			out = t.wpm.encodeWord(t, w, out)
		case "WordLevel":
			if id, ok := t.byText[w]; ok {
				out = append(out, int(id))
			} else if hp.unk >= 0 {
				out = append(out, int(hp.unk))
			} else {
				return nil, fmt.Errorf("word %q is not in the vocabulary and the tokenizer has no unk_token", w)
			}
		}
	}
	return out, nil
}

// ---- normalizers ----

func buildNormalizer(n hfNode) ([]func(string) string, error) {
	switch typ := n.typ(); typ {
	case "Sequence":
		subs, err := n.list("normalizers")
		if err != nil {
			return nil, err
		}
		var out []func(string) string
		for _, s := range subs {
			fs, err := buildNormalizer(s)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
		return out, nil
	case "NFC", "NFD", "NFKC", "NFKD":
		return []func(string) string{func(s string) string { return normalize(s, typ) }}, nil
	case "Lowercase":
		return []func(string) string{lowercase}, nil
	case "StripAccents":
		return []func(string) string{stripAccents}, nil
	case "Strip":
		left, right := n.boolean("strip_left", true), n.boolean("strip_right", true)
		return []func(string) string{func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}}, nil
	case "Prepend":
		p, _ := n.str("prepend")
		return []func(string) string{func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}}, nil
	case "Replace":
		pat, err := stringPattern(n)
		if err != nil {
			return nil, err
		}
		content, _ := n.str("content")
		return []func(string) string{func(s string) string { return strings.ReplaceAll(s, pat, content) }}, nil
	case "BertNormalizer":
		clean := n.boolean("clean_text", true)
		chinese := n.boolean("handle_chinese_chars", true)
		lower := n.boolean("lowercase", true)
		strip := lower
		if raw, ok := n["strip_accents"]; ok && string(raw) != "null" {
			strip = n.boolean("strip_accents", lower)
		}
		return []func(string) string{func(s string) string { return bertNormalize(s, clean, chinese, strip, lower) }}, nil
	case "ByteLevel":
		return []func(string) string{func(s string) string { return string(byteLevelEncode(nil, s)) }}, nil
	}
	return nil, unsupported("tokenizer.json normalizer %q is not implemented", n.typ())
}

// stringPattern returns a Split/Replace pattern that is a plain string;
// a regex pattern is refused.
func stringPattern(n hfNode) (string, error) {
	var pat struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := json.Unmarshal(n["pattern"], &pat); err != nil {
		return "", fmt.Errorf("tokenizer.json %s pattern: %w", n.typ(), err)
	}
	if pat.String != nil {
		if *pat.String == "" {
			return "", fmt.Errorf("tokenizer.json %s: empty pattern", n.typ())
		}
		return *pat.String, nil
	}
	if pat.Regex != nil {
		return "", unsupported("tokenizer.json %s with the regex %q is not implemented", n.typ(), *pat.Regex)
	}
	return "", fmt.Errorf("tokenizer.json %s: no pattern", n.typ())
}

// lowercase is Rust's str::to_lowercase: the full mapping, with final sigma.
func lowercase(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == 0x130: // İ → i + combining dot above
			b.WriteString("i\u0307")
		case r == 0x3A3:
			final := i > 0 && unicode.IsLetter(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1]))
			if final {
				b.WriteRune(0x3C2)
			} else {
				b.WriteRune(0x3C3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func stripAccents(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// bertNormalize is Hugging Face's BertNormalizer.
func bertNormalize(s string, clean, chinese, strip, lower bool) string {
	var b strings.Builder
	for _, r := range s {
		if clean {
			if r == 0 || r == 0xFFFD || (isOther(r) && r != '\t' && r != '\n' && r != '\r') {
				continue
			}
			if classOf(r)&cSpace != 0 {
				r = ' '
			}
		}
		if chinese && isChineseChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if strip {
		out = stripAccents(normalize(out, "NFD"))
	}
	if lower {
		out = lowercase(out)
	}
	return out
}

// ---- pre-tokenizers ----

// splitBehavior combines match/gap segments as tokenizers' SplitDelimiterBehavior.
type segment struct {
	s     string
	match bool
}

func applyBehavior(segs []segment, behavior string, out []string) ([]string, error) {
	switch behavior {
	case "Removed":
		for _, g := range segs {
			if !g.match {
				out = append(out, g.s)
			}
		}
	case "Isolated":
		for _, g := range segs {
			out = append(out, g.s)
		}
	case "MergedWithPrevious":
		var cur strings.Builder
		for _, g := range segs {
			cur.WriteString(g.s)
			if g.match {
				out = append(out, cur.String())
				cur.Reset()
			}
		}
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
	case "MergedWithNext":
		var cur strings.Builder
		for _, g := range segs {
			if g.match && cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			cur.WriteString(g.s)
		}
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
	case "Contiguous":
		// Adjacent matches join; gaps stay alone.
		cur, curMatch, has := "", false, false
		for _, g := range segs {
			if has && g.match && curMatch {
				cur += g.s
				continue
			}
			if has {
				out = append(out, cur)
			}
			cur, curMatch, has = g.s, g.match, true
		}
		if has {
			out = append(out, cur)
		}
	default:
		return nil, unsupported("split behavior %q", behavior)
	}
	return out, nil
}

// segmentsByMatcher cuts s into matches of m and the gaps between them.
func segmentsByMatcher(s string, m matcher, invert bool) []segment {
	var segs []segment
	gap, p := 0, 0
	for p < len(s) {
		if e := m(s, p); e > p {
			if gap < p {
				segs = append(segs, segment{s[gap:p], invert})
			}
			segs = append(segs, segment{s[p:e], !invert})
			p, gap = e, e
			continue
		}
		_, w := runeAt(s, p)
		p += w
	}
	if gap < len(s) {
		segs = append(segs, segment{s[gap:], invert})
	}
	return segs
}

func splitStage(m matcher, behavior string, invert bool) (hfPreStage, error) {
	if _, err := applyBehavior(nil, behavior, nil); err != nil {
		return nil, err
	}
	return func(s string, _ bool, out []string) []string {
		out, _ = applyBehavior(segmentsByMatcher(s, m, invert), behavior, out)
		return out
	}, nil
}

func behaviorOf(n hfNode, def string) string {
	if b, ok := n.str("behavior"); ok {
		return b
	}
	return def
}

func buildPre(n hfNode, byteLevel *bool) ([]hfPreStage, error) {
	switch typ := n.typ(); typ {
	case "Sequence":
		subs, err := n.list("pretokenizers")
		if err != nil {
			return nil, err
		}
		var out []hfPreStage
		for _, s := range subs {
			st, err := buildPre(s, byteLevel)
			if err != nil {
				return nil, err
			}
			out = append(out, st...)
		}
		return out, nil
	case "ByteLevel":
		*byteLevel = true
		prefix := n.boolean("add_prefix_space", true)
		useRegex := n.boolean("use_regex", true)
		return []hfPreStage{func(s string, _ bool, out []string) []string {
			if prefix && !strings.HasPrefix(s, " ") {
				s = " " + s
			}
			var words []string
			if useRegex {
				words = isolated(gpt2Match)(s, nil)
			} else {
				words = []string{s}
			}
			for _, w := range words {
				out = append(out, string(byteLevelEncode(nil, w)))
			}
			return out
		}}, nil
	case "Metaspace":
		rep, ok := n.str("replacement")
		if !ok || rep == "" {
			rep = spaceMark
		}
		scheme, ok := n.str("prepend_scheme")
		if !ok {
			scheme = "always"
			if !n.boolean("add_prefix_space", true) {
				scheme = "never"
			}
		}
		switch scheme {
		case "always", "first", "never":
		default:
			return nil, unsupported("Metaspace prepend_scheme %q", scheme)
		}
		split := n.boolean("split", true)
		repRune, _ := utf8.DecodeRuneInString(rep)
		return []hfPreStage{func(s string, atStart bool, out []string) []string {
			s = strings.ReplaceAll(s, " ", rep)
			if (scheme == "always" || (scheme == "first" && atStart)) && !strings.HasPrefix(s, rep) {
				s = rep + s
			}
			if !split {
				return append(out, s)
			}
			segs := segmentsByMatcher(s, func(s string, p int) int {
				r, w := runeAt(s, p)
				if r == repRune {
					return p + w
				}
				return -1
			}, false)
			out, _ = applyBehavior(segs, "MergedWithNext", out)
			return out
		}}, nil
	case "Whitespace":
		// \w+|[^\w\s]+, everything else removed.
		m := func(s string, p int) int {
			r, _ := runeAt(s, p)
			if isWordChar(r) {
				return runWhile(s, p, func(r rune, _ uint16) bool { return isWordChar(r) })
			}
			if classOf(r)&cSpace == 0 {
				return runWhile(s, p, func(r rune, c uint16) bool { return !isWordChar(r) && c&cSpace == 0 })
			}
			return -1
		}
		st, _ := splitStage(m, "Removed", true)
		return []hfPreStage{st}, nil
	case "WhitespaceSplit":
		st, _ := splitStage(func(s string, p int) int {
			if isSpaceAt(s, p) {
				return runWhile(s, p, isWS)
			}
			return -1
		}, "Removed", false)
		return []hfPreStage{st}, nil
	case "BertPreTokenizer":
		ws, _ := splitStage(func(s string, p int) int {
			if isSpaceAt(s, p) {
				return runWhile(s, p, isWS)
			}
			return -1
		}, "Removed", false)
		punct, _ := splitStage(func(s string, p int) int {
			r, w := runeAt(s, p)
			if isBertPunct(r) {
				return p + w
			}
			return -1
		}, "Isolated", false)
		return []hfPreStage{ws, punct}, nil
	case "Punctuation":
		st, err := splitStage(func(s string, p int) int {
			r, w := runeAt(s, p)
			if isBertPunct(r) {
				return p + w
			}
			return -1
		}, behaviorOf(n, "Isolated"), false)
		if err != nil {
			return nil, err
		}
		return []hfPreStage{st}, nil
	case "Digits":
		individual := n.boolean("individual_digits", false)
		st, _ := splitStage(func(s string, p int) int {
			r, w := runeAt(s, p)
			if !unicode.IsNumber(r) {
				return -1
			}
			if individual {
				return p + w
			}
			return runWhile(s, p, func(r rune, _ uint16) bool { return unicode.IsNumber(r) })
		}, "Contiguous", false)
		if individual {
			st, _ = splitStage(func(s string, p int) int {
				r, w := runeAt(s, p)
				if unicode.IsNumber(r) {
					return p + w
				}
				return -1
			}, "Isolated", false)
		}
		return []hfPreStage{st}, nil
	case "Split":
		var pat struct {
			String *string `json:"String"`
			Regex  *string `json:"Regex"`
		}
		if err := json.Unmarshal(n["pattern"], &pat); err != nil {
			return nil, fmt.Errorf("tokenizer.json Split pattern: %w", err)
		}
		var m matcher
		switch {
		case pat.String != nil && *pat.String != "":
			lit := *pat.String
			m = func(s string, p int) int {
				if strings.HasPrefix(s[p:], lit) {
					return p + len(lit)
				}
				return -1
			}
		case pat.Regex != nil:
			k, ok := knownRegexes[canonRegex(*pat.Regex)]
			if !ok {
				return nil, unsupported("tokenizer.json Split regex %q is not one qkv implements", *pat.Regex)
			}
			if k.stage != nil {
				if b := behaviorOf(n, "Isolated"); b != "Isolated" && b != "MergedWithNext" {
					return nil, unsupported("Split regex %q with behavior %q", *pat.Regex, b)
				}
				fn := k.stage
				return []hfPreStage{func(s string, _ bool, out []string) []string { return fn(s, out) }}, nil
			}
			m = k.m
		default:
			return nil, fmt.Errorf("tokenizer.json Split without a pattern")
		}
		st, err := splitStage(m, behaviorOf(n, "Isolated"), n.boolean("invert", false))
		if err != nil {
			return nil, err
		}
		return []hfPreStage{st}, nil
	case "CharDelimiterSplit":
		d, _ := n.str("delimiter")
		r, _ := utf8.DecodeRuneInString(d)
		st, _ := splitStage(func(s string, p int) int {
			c, w := runeAt(s, p)
			if c == r {
				return p + w
			}
			return -1
		}, "Removed", false)
		return []hfPreStage{st}, nil
	}
	return nil, unsupported("tokenizer.json pre_tokenizer %q is not implemented", n.typ())
}

// isWordChar is \w: letters, marks, numbers and connector punctuation.
func isWordChar(r rune) bool {
	return r == '_' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc)
}

func isBertPunct(r rune) bool {
	return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) || unicode.IsPunct(r)
}

// canonRegex writes CR, LF and tab as the escapes \r, \n, \t: a regex
// means the same with the character or its escape, and tokenizer.json files
// have both.
func canonRegex(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`).Replace(s)
}

// knownRegex is a Split regex qkv implements by hand.
type knownRegex struct {
	m     matcher
	stage stage // zero-width splits
}

var knownRegexes map[string]knownRegex

func buildKnownRegexes() {
	knownRegexes = map[string]knownRegex{}
	add := func(m matcher, pats ...string) {
		for _, p := range pats {
			knownRegexes[canonRegex(p)] = knownRegex{m: m}
		}
	}
	contr := `(?i:'s|'t|'re|'ve|'m|'ll|'d)`
	add(gpt2Match, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
		`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`)
	add(llama3Regex.match, contr+`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add(qwen2Regex.match, contr+`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add((&l3{contractions: true, word: wordLM, digits: 1, tail: "\r\n", punctNoM: true}).match,
		contr+`|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add((&l3{contractions: true, word: wordL, digits: 0, tail: "\r\n"}).match,
		contr+`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add((&l3{contractions: true, word: wordL, digits: 1, tail: ""}).match,
		contr+`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`)
	U, W := `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`
	add((&l3{word: wordCase, digits: 1, tail: "\r\n/"}).match,
		`[^\r\n\p{L}\p{N}]?`+U+`*`+W+`+|[^\r\n\p{L}\p{N}]?`+U+`+`+W+`*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add(gpt4oRegex.match,
		`[^\r\n\p{L}\p{N}]?`+U+`*`+W+`+`+contr+`?|[^\r\n\p{L}\p{N}]?`+U+`+`+W+`*`+contr+`?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add(dsv3Match, `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`+"`"+`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`)
	add(runMatch(nil, isN, 0), `\p{N}+`)
	add(runMatch(nil, isN, 1), `\p{N}`, `\p{N}{1}`)
	add(runMatch(nil, isN, 3), `\p{N}{1,3}`)
	add(runMatch(nil, isCRLF, 1), `[\r\n]`)
	add(runMatch(isWS, isLetterCls, 0), `\s?\p{L}+`)
	add(runMatch(isWS, isPunctCls, 0), `\s?\p{P}+`)
	add(runMatch(nil, inClass(deepseekCJK), 0), `[一-龥ࠀ-一가-퟿]+`)
	add(runMatch(nil, inClass(deepseekV3CJK), 0), `[一-龥぀-ゟ゠-ヿ]+`)
	add(threeDigits, `[0-9][0-9][0-9]`)
	knownRegexes[`\s+$`] = knownRegex{stage: trailingWS}
	add(runMatch(isSpaceChar, func(r rune, c uint16) bool { return c&cSpace == 0 && !bloomExcluded.has(r) }, 0), ` ?[^(\s|.,!?…。，、।۔،)]+`)
	knownRegexes[`(?=(\d{3})+(?!\d))`] = knownRegex{stage: digitGroupsFromRight}
}

// ---- post-processors ----

// buildPost returns the single-sequence template: special ids, -1 for the text.
func buildPost(t *Tokenizer, n hfNode) ([]int, error) {
	idOf := func(key string) (int, error) {
		var pair []json.RawMessage
		if err := json.Unmarshal(n[key], &pair); err != nil || len(pair) != 2 {
			return 0, fmt.Errorf("tokenizer.json %s.%s is not [token, id]", n.typ(), key)
		}
		var id int64
		if err := json.Unmarshal(pair[1], &id); err != nil || !t.validID(int(id)) {
			return 0, fmt.Errorf("tokenizer.json %s.%s: bad id", n.typ(), key)
		}
		return int(id), nil
	}
	switch typ := n.typ(); typ {
	case "ByteLevel":
		return nil, nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := idOf("cls")
		if err != nil {
			return nil, err
		}
		sep, err := idOf("sep")
		if err != nil {
			return nil, err
		}
		t.Info.CLS, t.Info.SEP = cls, sep
		return []int{cls, -1, sep}, nil
	case "TemplateProcessing":
		var single []map[string]struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(n["single"], &single); err != nil {
			return nil, fmt.Errorf("tokenizer.json TemplateProcessing.single: %w", err)
		}
		var specials map[string]struct {
			IDs []int64 `json:"ids"`
		}
		if raw, ok := n["special_tokens"]; ok {
			if err := json.Unmarshal(raw, &specials); err != nil {
				return nil, fmt.Errorf("tokenizer.json TemplateProcessing.special_tokens: %w", err)
			}
		}
		var out []int
		for _, item := range single {
			if _, ok := item["Sequence"]; ok {
				out = append(out, -1)
				continue
			}
			st, ok := item["SpecialToken"]
			if !ok {
				return nil, fmt.Errorf("tokenizer.json TemplateProcessing item is neither Sequence nor SpecialToken")
			}
			sp, ok := specials[st.ID]
			if !ok {
				return nil, fmt.Errorf("tokenizer.json TemplateProcessing: special token %q is not defined", st.ID)
			}
			for _, id := range sp.IDs {
				if !t.validID(int(id)) {
					return nil, fmt.Errorf("tokenizer.json TemplateProcessing: special token %q has id %d", st.ID, id)
				}
				out = append(out, int(id))
			}
		}
		return out, nil
	case "Sequence":
		subs, err := n.list("processors")
		if err != nil {
			return nil, err
		}
		var out []int
		for _, s := range subs {
			p, err := buildPost(t, s)
			if err != nil {
				return nil, err
			}
			if p == nil {
				continue
			}
			if out != nil {
				return nil, unsupported("tokenizer.json post_processor Sequence with more than one template")
			}
			out = p
		}
		return out, nil
	}
	return nil, unsupported("tokenizer.json post_processor %q is not implemented", n.typ())
}

// ---- decoders ----

func buildDecoder(n hfNode) ([]func([]string) []string, error) {
	switch typ := n.typ(); typ {
	case "Sequence":
		subs, err := n.list("decoders")
		if err != nil {
			return nil, err
		}
		var out []func([]string) []string
		for _, s := range subs {
			d, err := buildDecoder(s)
			if err != nil {
				return nil, err
			}
			out = append(out, d...)
		}
		return out, nil
	case "ByteLevel":
		return []func([]string) []string{func(ps []string) []string {
			return []string{byteLevelDecode(strings.Join(ps, ""))}
		}}, nil
	case "Metaspace":
		rep, ok := n.str("replacement")
		if !ok || rep == "" {
			rep = spaceMark
		}
		scheme, ok := n.str("prepend_scheme")
		if !ok {
			scheme = "always"
			if !n.boolean("add_prefix_space", true) {
				scheme = "never"
			}
		}
		return []func([]string) []string{func(ps []string) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				p = strings.ReplaceAll(p, rep, " ")
				if i == 0 && scheme != "never" {
					p = strings.TrimPrefix(p, " ")
				}
				out[i] = p
			}
			return out
		}}, nil
	case "WordPiece":
		prefix, ok := n.str("prefix")
		if !ok {
			prefix = "##"
		}
		return []func([]string) []string{func(ps []string) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				if i > 0 {
					if strings.HasPrefix(p, prefix) {
						p = p[len(prefix):]
					} else {
						p = " " + p
					}
				}
				out[i] = p
			}
			return out
		}}, nil
	case "ByteFallback":
		return []func([]string) []string{func(ps []string) []string {
			var out []string
			var pending []byte
			flush := func() {
				if len(pending) > 0 {
					out = append(out, strings.ToValidUTF8(string(pending), "\uFFFD"))
					pending = pending[:0]
				}
			}
			for _, p := range ps {
				if b, ok := parseByteToken(p); ok {
					pending = append(pending, b)
					continue
				}
				flush()
				out = append(out, p)
			}
			flush()
			return out
		}}, nil
	case "Fuse":
		return []func([]string) []string{func(ps []string) []string { return []string{strings.Join(ps, "")} }}, nil
	case "Strip":
		content, _ := n.str("content")
		var start, stop int
		_ = json.Unmarshal(n["start"], &start)
		_ = json.Unmarshal(n["stop"], &stop)
		return []func([]string) []string{func(ps []string) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				for k := 0; k < start && strings.HasPrefix(p, content) && content != ""; k++ {
					p = p[len(content):]
				}
				for k := 0; k < stop && strings.HasSuffix(p, content) && content != ""; k++ {
					p = p[:len(p)-len(content)]
				}
				out[i] = p
			}
			return out
		}}, nil
	case "Replace":
		pat, err := stringPattern(n)
		if err != nil {
			return nil, err
		}
		content, _ := n.str("content")
		return []func([]string) []string{func(ps []string) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				out[i] = strings.ReplaceAll(p, pat, content)
			}
			return out
		}}, nil
	}
	return nil, unsupported("tokenizer.json decoder %q is not implemented", n.typ())
}

func hfDecode(t *Tokenizer, ids []int) string {
	ps := make([]string, len(ids))
	for i, id := range ids {
		ps[i] = t.tokens[id]
	}
	if t.hf.decodeErr != nil || len(t.hf.decoders) == 0 {
		if t.hf.model == "WordPiece" {
			d, _ := buildDecoder(hfNode{"type": json.RawMessage(`"WordPiece"`)})
			ps = d[0](ps)
			return strings.Join(ps, "")
		}
		return strings.Join(ps, " ")
	}
	for _, d := range t.hf.decoders {
		ps = d(ps)
	}
	return strings.Join(ps, "")
}
