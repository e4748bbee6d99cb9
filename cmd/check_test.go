package cmd_test

import (
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// checkDoc is the qkv.check/v1 document as a script reads it.
type checkDoc struct {
	Schema   string          `json:"schema"`
	Source   json.RawMessage `json:"source"`
	QKV      json.RawMessage `json:"qkv"`
	Path     string          `json:"path"`
	Passed   *bool           `json:"passed"`
	Spectra  string          `json:"spectra"`
	Failures []checkProblem  `json:"failures"`
	Warnings []checkProblem  `json:"warnings"`
	Checks   []string        `json:"checks"`
	Tensors  int             `json:"tensors_checked"`
	Layers   int             `json:"layers_checked"`
}

type checkProblem struct {
	Check     string      `json:"check"`
	Tensor    string      `json:"tensor"`
	Layer     *int        `json:"layer"`
	Stat      *string     `json:"stat"`
	Value     *float64    `json:"value"`
	Threshold *float64    `json:"threshold"`
	Bounds    *[2]float64 `json:"bounds"`
	Message   string      `json:"message"`
}

// checkJSON runs `qkv check --format json ARGS` and parses the document.
func checkJSON(t *testing.T, args ...string) (int, checkDoc, string) {
	t.Helper()
	code, out, errs := run(append([]string{"check", "--format", "json"}, args...)...)
	var doc checkDoc
	if code == cmd.ExitOK || code == cmd.ExitFindings {
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("check %v: exit %d, stdout is not a qkv.check/v1 document: %v\n%s", args, code, err, out)
		}
		if doc.Schema != "qkv.check/v1" || doc.Passed == nil || doc.Failures == nil || doc.Warnings == nil || doc.Checks == nil {
			t.Errorf("check %v: document lacks schema/passed/failures/warnings/checks: %s", args, out)
		}
		if *doc.Passed != (code == cmd.ExitOK) || *doc.Passed != (len(doc.Failures) == 0) {
			t.Errorf("check %v: exit %d, passed %v, %d failures", args, code, *doc.Passed, len(doc.Failures))
		}
	}
	return code, doc, errs
}

type checkWant struct{ check, tensor, msg string }

func checkHas(ps []checkProblem, w checkWant) bool {
	for _, p := range ps {
		if p.Check == w.check && (w.tensor == "" || p.Tensor == w.tensor) && strings.Contains(p.Message, w.msg) {
			return true
		}
	}
	return false
}

func checkProblems(ps []checkProblem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n  " + p.Check + " " + p.Tensor + ": " + p.Message)
	}
	return b.String()
}

// copyModel copies a checkpoint file or folder into a temporary folder.
func checkCopyModel(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{src}
	if st.IsDir() {
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		es, _ := os.ReadDir(src)
		files = files[:0]
		for _, e := range es {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(src, e.Name()))
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		to := dst
		if st.IsDir() {
			to = filepath.Join(dst, filepath.Base(f))
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// patchTensor lets fn change a tensor's stored bytes in file (located with
// formats.Open, which this test does not exercise).
func checkPatchTensor(t *testing.T, file, tensor string, fn func([]byte)) {
	t.Helper()
	ck, err := formats.Open(file, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tt := ck.Tensor(tensor)
	if tt == nil {
		t.Fatalf("no tensor %s in %s", tensor, file)
	}
	off, size := tt.Offset, tt.Bytes
	ck.Close()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fn(b[off : off+size])
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkTempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckExitStatus(t *testing.T) {
	root := testref.RepoRoot()
	tiny := filepath.Join(root, "testdata", "tiny-llama")
	tests := []struct {
		name string
		args []string
		code int
		err  string // substring of the one stderr line for exit 2 and 3
	}{
		{"planted problems", []string{tiny}, 1, ""},
		{"planted problems only warn", []string{tiny, "--warn-on", "dead_head,duplicate_heads", "--warn-on", "outlier_norm"}, 0, ""},
		{"planted problems skipped", []string{tiny, "--skip", "dead_head,duplicate_heads,outlier_norm"}, 0, ""},
		{"zero rows made to fail", []string{tiny, "--skip", "dead_head,duplicate_heads,outlier_norm", "--fail-on", "zero_rows"}, 1, ""},
		{"dtype not allowed", []string{tiny, "--skip", "dead_head,duplicate_heads,outlier_norm", "--allow-dtypes", "F16,BF16"}, 1, ""},
		{"dtype allowed", []string{tiny, "--skip", "dead_head,duplicate_heads,outlier_norm", "--allow-dtypes", "f32"}, 0, ""},
		{"outlier threshold above ×41.9", []string{tiny, "--skip", "dead_head,duplicate_heads", "--outlier", "50"}, 0, ""},
		{"missing path", []string{filepath.Join(root, "testdata", "no-such-model")}, 3, "no such file or folder"},
		{"empty file", []string{checkTempFile(t, "empty.safetensors", "")}, 3, "empty"},
		{"not a checkpoint", []string{checkTempFile(t, "x.txt", "hello, world")}, 3, "not a safetensors or GGUF file"},
		{"a pickle", []string{checkTempFile(t, "pytorch_model.bin", "\x80\x02}q\x00(X\x05\x00\x00\x00")}, 3, "which qkv does not read"},
		{"a zip", []string{checkTempFile(t, "model.pt", "PK\x03\x04\x14\x00\x00\x00\x00\x00")}, 3, ""},
		{"an LFS pointer", []string{checkTempFile(t, "model.safetensors", "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 10\n")}, 3, "LFS pointer"},
		{"a web page", []string{checkTempFile(t, "model.gguf", "<!DOCTYPE html><html><body>404</body></html>")}, 3, "HTML page"},
		{"folder without a model", []string{t.TempDir()}, 3, ""},
		{"bad --format", []string{tiny, "--format", "yaml"}, 2, `--format must be text, json, github, junit or markdown, not "yaml"`},
		{"unknown check in --fail-on", []string{tiny, "--fail-on", "nan,dead_heads"}, 2, `unknown check "dead_heads"`},
		{"unknown check in --warn-on", []string{tiny, "--warn-on", "everything"}, 2, `unknown check "everything"`},
		{"unknown type in --allow-dtypes", []string{tiny, "--allow-dtypes", "F16,fp32"}, 2, `--allow-dtypes: unknown element type "fp32"`},
		{"rules file with a bad bound", []string{tiny, "--rules", checkTempFile(t, "r.json", `{"bounds": {"q": {"fro": [10, 1]}}}`)}, 2, "min above max"},
		{"negative threshold flag", []string{tiny, "--outlier", "-5"}, 2, "--outlier must be a positive finite number, not -5"},
		{"unknown check in --skip", []string{tiny, "--skip", "NaN"}, 2, `unknown check "NaN"`},
		{"malformed rules file", []string{tiny, "--rules", checkTempFile(t, "r.json", `{"severity": {"nan": "warn",}}`)}, 2, "--rules"},
		{"rules file with unknown key", []string{tiny, "--rules", checkTempFile(t, "r.json", `{"bound": {}}`)}, 2, `r.json: rules: unknown key "bound" (did you mean "bounds"?)`},
		{"rules file with unknown check", []string{tiny, "--rules", checkTempFile(t, "r.json", `{"severity": {"heads": "off"}}`)}, 2, `unknown check "heads"`},
		{"missing rules file", []string{tiny, "--rules", filepath.Join(t.TempDir(), "none.json")}, 2, "--rules"},
		{"no path", []string{}, 2, "accepts 1 arg"},
		{"two paths", []string{tiny, tiny}, 2, "accepts 1 arg"},
		{"unknown flag", []string{tiny, "--strict"}, 2, "unknown flag"},
		{"missing baseline", []string{tiny, "--baseline", filepath.Join(t.TempDir(), "none.json")}, 3, "--baseline"},
		{"baseline that is not a report", []string{tiny, "--baseline", checkTempFile(t, "b.json", `{"schema": "qkv.check/v1"}`)}, 3, "not a qkv inspect --json report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(append([]string{"check"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			switch code {
			case cmd.ExitOK, cmd.ExitFindings:
				if errs != "" {
					t.Errorf("stderr %q", errs)
				}
				// The verdict first.
				verdict := map[int]string{0: "PASS ", 1: "FAIL "}[code]
				if !strings.HasPrefix(out, verdict) {
					t.Errorf("first line %q, want %q...", strings.SplitN(out, "\n", 2)[0], verdict)
				}
			default:
				if out != "" {
					t.Errorf("stdout %q", out)
				}
				first, _, _ := strings.Cut(errs, "\n")
				if !strings.HasPrefix(first, "qkv: ") || !strings.Contains(first, tc.err) {
					t.Errorf("stderr %q, want a line containing %q", errs, tc.err)
				}
			}
		})
	}
}

// TestCheckCorrupted checks corrupted copies through the command line and
// its JSON output.
func TestCheckCorrupted(t *testing.T) {
	shared := testref.SharedDir(t)
	zoo := func(rel string) string { return filepath.Join(shared, "reference", "zoo", filepath.FromSlash(rel)) }
	const q0 = "model.layers.0.self_attn.q_proj.weight"
	tests := []struct {
		name  string
		src   string
		file  string // inside the copied folder ("" for a single file)
		patch func(t *testing.T, file string)
		args  []string // "@NAME" first: check file NAME of the copied folder
		want  checkWant
	}{
		{"F32 NaN", zoo("llama/hf"), "model.safetensors", func(t *testing.T, f string) {
			checkPatchTensor(t, f, "model.layers.1.self_attn.o_proj.weight", func(b []byte) { binary.LittleEndian.PutUint32(b[4*77:], 0x7fc00000) })
		}, nil, checkWant{"nan", "model.layers.1.self_attn.o_proj.weight", "1 NaN values of 16384"}},
		{"F16 GGUF Inf", zoo("qwen2/gguf/qwen2-f16.gguf"), "", func(t *testing.T, f string) {
			checkPatchTensor(t, f, "blk.0.attn_k.weight", func(b []byte) { binary.LittleEndian.PutUint16(b[2:], 0x7c00) })
		}, nil, checkWant{"inf", "blk.0.attn_k.weight", "1 infinite values"}},
		{"Q8_0 GGUF block scale NaN", zoo("phi3/gguf/phi3-Q8_0.gguf"), "", func(t *testing.T, f string) {
			checkPatchTensor(t, f, "blk.1.attn_output.weight", func(b []byte) { binary.LittleEndian.PutUint16(b[34*3:], 0xfe00) })
		}, nil, checkWant{"nan", "blk.1.attn_output.weight", "1 of 128 Q8_0 blocks have a NaN or infinite scale"}},
		{"zeroed head", zoo("llama/hf"), "model.safetensors", func(t *testing.T, f string) {
			checkPatchTensor(t, f, q0, func(b []byte) { clear(b[4*32*64*5 : 4*32*64*6]) })
		}, nil, checkWant{"dead_head", q0, "layers.0.q: head 5 has Frobenius norm 0"}},
		{"duplicated head", zoo("llama/hf"), "model.safetensors", func(t *testing.T, f string) {
			checkPatchTensor(t, f, "model.layers.1.self_attn.k_proj.weight", func(b []byte) { copy(b[4*32*64:], b[:4*32*64]) })
		}, nil, checkWant{"duplicate_heads", "model.layers.1.self_attn.k_proj.weight", "heads 0 and 1 are near-duplicates (cosine 1"}},
		{"scaled-up layer", zoo("llama/hf"), "model.safetensors", func(t *testing.T, f string) {
			checkPatchTensor(t, f, "model.layers.0.self_attn.v_proj.weight", func(b []byte) {
				for i := 0; i < len(b); i += 4 {
					binary.LittleEndian.PutUint32(b[i:], math.Float32bits(30*math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
				}
			})
		}, nil, checkWant{"outlier_norm", "model.layers.0.self_attn.v_proj.weight", "layers.0.v: spectral norm"}},
		{"truncated shard", zoo("llama/hf-sharded"), "model-00002-of-00002.safetensors", func(t *testing.T, f string) {
			if err := os.Truncate(f, 200000); err != nil {
				t.Fatal(err)
			}
		}, nil, checkWant{"structure", "", "model-00002-of-00002.safetensors"}},
		{"missing shard", zoo("llama/hf-sharded"), "model-00001-of-00002.safetensors", func(t *testing.T, f string) {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}, nil, checkWant{"structure", "", `shard "model-00001-of-00002.safetensors" is missing`}},
		{"missing split part", zoo("llama/gguf"), "llama-f32-split-00003-of-00003.gguf", func(t *testing.T, f string) {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}, []string{"@llama-f32-split-00001-of-00003.gguf"}, checkWant{"structure", "", "00003-of-00003"}},
		{"geometry from a rules file", zoo("gpt2/hf"), "", nil,
			[]string{"--rules", checkTempFile(t, "rules.json", "// gpt2 has 2 layers\n{\"geometry\": {\"layers\": 12}}\n")},
			checkWant{"geometry", "", "layers is 2, the rules expect 12"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := checkCopyModel(t, tc.src)
			if tc.patch != nil {
				f := p
				if tc.file != "" {
					f = filepath.Join(p, tc.file)
				}
				tc.patch(t, f)
			}
			args := tc.args
			if len(args) > 0 && strings.HasPrefix(args[0], "@") { // check this file of the copied folder
				p, args = filepath.Join(p, args[0][1:]), args[1:]
			}
			code, doc, errs := checkJSON(t, append([]string{p}, args...)...)
			if code != cmd.ExitFindings {
				t.Fatalf("exit %d, want 1; stderr %q", code, errs)
			}
			if !checkHas(doc.Failures, tc.want) {
				t.Errorf("no %s failure of %q containing %q; failures:%s", tc.want.check, tc.want.tensor, tc.want.msg, checkProblems(doc.Failures))
			}
			if tc.name == "truncated shard" && (len(doc.Failures) != 1 || doc.Failures[0].Tensor == "") {
				t.Errorf("a truncated shard is one structure failure naming a tensor:%s", checkProblems(doc.Failures))
			}
		})
	}
}

// TestCheckBaseline: `qkv inspect --json` of a model is its baseline; the
// model passes against it, a copy with a changed matrix fails.
func TestCheckBaseline(t *testing.T) {
	src := filepath.Join(testref.SharedDir(t), "reference", "zoo", "bloom", "hf")
	code, out, errs := run("inspect", "--json", src)
	if code != 0 {
		t.Fatalf("inspect: exit %d, %s", code, errs)
	}
	base := checkTempFile(t, "baseline.json", out)
	code, doc, errs := checkJSON(t, src, "--baseline", base)
	if code != 0 || !checkContains(doc.Checks, "drift") {
		t.Fatalf("model against its own baseline: exit %d (%s), checks %v, failures:%s", code, errs, doc.Checks, checkProblems(doc.Failures))
	}
	p := checkCopyModel(t, src)
	const dense = "transformer.h.1.self_attention.dense.weight"
	checkPatchTensor(t, filepath.Join(p, "model.safetensors"), dense, func(b []byte) {
		// F16: flip the sign of a few values; fro stays, max_abs may not,
		// the spectrum moves.
		for i := 0; i < 64; i++ {
			b[2*(i*65)+1] ^= 0x80
		}
	})
	code, doc, errs = checkJSON(t, p, "--baseline", base)
	if code != cmd.ExitFindings {
		t.Fatalf("changed copy: exit %d, %s", code, errs)
	}
	if !checkHas(doc.Failures, checkWant{"drift", dense, "layers.1.o: spectral_norm drifted from the baseline"}) {
		t.Errorf("failures:%s", checkProblems(doc.Failures))
	}
	for _, f := range doc.Failures {
		if f.Check != "drift" || f.Layer == nil || *f.Layer != 1 {
			t.Errorf("unexpected failure %+v", f)
		}
	}
	// A looser tolerance forgives it.
	if code, doc, _ := checkJSON(t, p, "--baseline", base, "--drift-tol", "0.5"); code != 0 {
		t.Errorf("--drift-tol 0.5: exit %d:%s", code, checkProblems(doc.Failures))
	}
}

func checkContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestCheckFormats renders tiny-llama's result in every format.
func TestCheckFormats(t *testing.T) {
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	code, doc, _ := checkJSON(t, tiny)
	if code != 1 || len(doc.Failures) != 3 || doc.Tensors != 39 || doc.Layers != 4 {
		t.Fatalf("exit %d, %d failures, %d tensors, %d layers:%s", code, len(doc.Failures), doc.Tensors, doc.Layers, checkProblems(doc.Failures))
	}
	for _, w := range []checkWant{
		{"dead_head", "model.layers.1.self_attn.q_proj.weight", "head 3"},
		{"duplicate_heads", "model.layers.2.self_attn.q_proj.weight", "heads 4 and 5"},
		{"outlier_norm", "model.layers.3.self_attn.o_proj.weight", "spectral norm"},
	} {
		if !checkHas(doc.Failures, w) {
			t.Errorf("no %s failure:%s", w.check, checkProblems(doc.Failures))
		}
	}
	for _, f := range doc.Failures {
		if f.Layer == nil {
			t.Errorf("%s failure has no layer", f.Check)
		}
	}
	_, viaJSON, _ := run("check", "--json", tiny)
	if _, viaFormat, _ := run("check", "--format", "json", tiny); viaJSON != viaFormat {
		t.Error("--json and --format json differ")
	}

	_, out, _ := run("check", "--format", "github", tiny)
	line := regexp.MustCompile(`^::(error|warning|notice)( [a-z]+=[^,:]*(,[a-z]+=[^,:]*)*)?::.*$`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	errorsN := 0
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("not a workflow command: %q", l)
		}
		if strings.HasPrefix(l, "::error ") {
			errorsN++
		}
	}
	if errorsN != 3 || len(lines) != len(doc.Failures)+len(doc.Warnings)+1 || !strings.HasPrefix(lines[len(lines)-1], "::notice title=qkv check failed::") {
		t.Errorf("%d errors in %d lines:\n%s", errorsN, len(lines), out)
	}

	_, out, _ = run("check", "--format", "junit", tiny)
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Classname string     `xml:"classname,attr"`
				Failure   []struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &suites); err != nil || len(suites.Suite) != 1 {
		t.Fatalf("junit: %v\n%s", err, out)
	}
	s := suites.Suite[0]
	failing := 0
	classes := map[string]bool{}
	for _, c := range s.Cases {
		classes[c.Classname] = true
		if len(c.Failure) > 0 {
			failing++
		}
	}
	if failing != 3 || s.Failures != 3 || suites.Failures != 3 || s.Tests != len(s.Cases) || suites.Tests != s.Tests {
		t.Errorf("junit: %d failing cases, attributes %d/%d failures, %d/%d tests, %d cases", failing, s.Failures, suites.Failures, s.Tests, suites.Tests, len(s.Cases))
	}
	for _, id := range doc.Checks {
		if !classes["qkv.check."+id] {
			t.Errorf("junit: no test case for check %s", id)
		}
	}

	// Text, unstyled: the verdict, then a line per problem naming its
	// check (and one or more with its message).
	_, out, _ = run("check", tiny)
	n := 0
	for _, l := range strings.Split(out, "\n")[1:] {
		if strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "warn ") {
			n++
		}
	}
	if !strings.HasPrefix(out, "FAIL ") || n != len(doc.Failures)+len(doc.Warnings) || strings.Contains(out, "\x1b[") {
		t.Errorf("text:\n%s", out)
	}
}

// TestCheckHealthy: the shared models pass through the command line (the
// full set, every GGUF too, is in inspect/check's tests).
func TestCheckHealthy(t *testing.T) {
	shared := testref.SharedDir(t)
	paths, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "*", "hf"))
	for _, f := range []string{"gguf/stories260k-v1-f32/tinyllamas-stories-260k-f32.gguf", "gguf/stories260k-v3-f32/stories260K.gguf",
		"gguf/llama2-tiny-random/llama-2-tiny-random.gguf", "safetensors/gpt2-capp-4l", "safetensors/gpt2-tiny-random", "safetensors/bart-tiny-random"} {
		paths = append(paths, filepath.Join(shared, "fixtures", filepath.FromSlash(f)))
	}
	if len(paths) != 14 {
		t.Fatalf("%d models, want 14", len(paths))
	}
	for _, p := range paths {
		rel, _ := filepath.Rel(shared, p)
		t.Run(rel, func(t *testing.T) {
			code, doc, errs := checkJSON(t, p)
			if code != 0 || len(doc.Failures) != 0 || errs != "" {
				t.Errorf("exit %d, stderr %q, failures:%s", code, errs, checkProblems(doc.Failures))
			}
			if doc.Tensors == 0 || doc.Layers == 0 {
				t.Errorf("%d tensors, %d layers checked", doc.Tensors, doc.Layers)
			}
		})
	}
}

// TestCheckRemote: check opens what the other commands open — a repository
// of the Hugging Face Hub (here its emulator) — and gates it as a local
// copy; a repository that does not exist cannot be read (exit 3).
func TestCheckRemote(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo(t, "org/tiny", filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded"))
	verifyEnv(t, h.URL)
	_, local, _ := run("check", filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded"), "--json")
	code, out, errs := run("check", "hf://org/tiny", "--json")
	if code != cmd.ExitFindings {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(local), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a["failures"]) != fmt.Sprint(b["failures"]) || fmt.Sprint(a["warnings"]) != fmt.Sprint(b["warnings"]) {
		t.Errorf("remote check differs from the local one:\n%s\n%s", local, out)
	}
	if code, out, errs := run("check", "hf://org/none"); code != cmd.ExitInput {
		t.Errorf("missing repository: exit %d, %s%s", code, out, errs)
	}
}
