package cmd_test

// Tests for `qkv cat`: the values and the summary (min, max, mean, NaN,
// ±Inf and zero counts) of special.gguf's edge-case tensors equal the
// reference decoder's values and manifest.json's counts; JSON has null
// where a value is NaN or ±Inf.

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

type catJSON struct {
	Schema  string          `json:"schema"`
	Tensor  string          `json:"tensor"`
	DType   string          `json:"dtype"`
	Shape   []int64         `json:"shape"`
	RowLen  int64           `json:"row_len"`
	Rows    int64           `json:"rows"`
	Shown   int64           `json:"rows_shown"`
	Values  [][]json.Number `json:"values"` // "" for null
	Summary struct {
		Count  int64       `json:"count"`
		Min    json.Number `json:"min"`
		Max    json.Number `json:"max"`
		Mean   json.Number `json:"mean"`
		NaN    int64       `json:"nan_count"`
		PosInf int64       `json:"pos_inf_count"`
		NegInf int64       `json:"neg_inf_count"`
		Zeros  int64       `json:"zero_count"`
	} `json:"summary"`
}

// refSummary is what cat must report, computed from reference values.
type refSummary struct {
	count, nan, posInf, negInf, zeros int64
	min, max, mean                    float64
}

func summarize(vals []float32) refSummary {
	s := refSummary{count: int64(len(vals)), min: math.Inf(1), max: math.Inf(-1)}
	var sum float64
	var finite int64
	for _, v := range vals {
		f := float64(v)
		switch {
		case math.IsNaN(f):
			s.nan++
		case math.IsInf(f, 1):
			s.posInf++
		case math.IsInf(f, -1):
			s.negInf++
		default:
			if f == 0 {
				s.zeros++
			}
			finite++
			sum += f
			s.min, s.max = math.Min(s.min, f), math.Max(s.max, f)
		}
	}
	s.mean = sum / float64(finite)
	return s
}

func TestCatSpecial(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "quant")
	var manifest struct {
		Special struct {
			Tensors []struct {
				Name    string  `json:"name"`
				Shape   []int64 `json:"shape"`
				NaN     int64   `json:"n_nan"`
				PosInf  int64   `json:"n_posinf"`
				NegInf  int64   `json:"n_neginf"`
				NegZero int64   `json:"n_neg_zero"`
			} `json:"tensors"`
		} `json:"special"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	expected := readRef(t, filepath.Join(dir, "special.expected.safetensors"))
	gguf := filepath.Join(dir, "special.gguf")
	checked := 0
	for _, mt := range manifest.Special.Tensors {
		if mt.Name != "q8_0_special_scales" && mt.Name != "f16_all_codes" && mt.Name != "bf16_named" && mt.Name != "mxfp4_special_scales" {
			continue
		}
		checked++
		t.Run(mt.Name, func(t *testing.T) {
			want := expected[mt.Name].F32()
			ws := summarize(want)
			if ws.nan != mt.NaN || ws.posInf != mt.PosInf || ws.negInf != mt.NegInf {
				t.Fatalf("expected file and manifest disagree: %+v vs %+v", ws, mt)
			}
			var got catJSON
			runJSONInto(t, &got, "cat", "--json", "--rows", "100000", gguf, mt.Name)
			rowLen := mt.Shape[len(mt.Shape)-1]
			if got.Schema != "qkv.cat/v1" || got.Tensor != mt.Name || fmt.Sprint(got.Shape) != fmt.Sprint(mt.Shape) ||
				got.RowLen != rowLen || got.Rows != int64(len(want))/rowLen || got.Shown != got.Rows {
				t.Errorf("header %s %s %v row_len %d rows %d shown %d; want shape %v", got.Schema, got.Tensor, got.Shape, got.RowLen, got.Rows, got.Shown, mt.Shape)
			}
			if int64(len(got.Values)) != got.Shown {
				t.Fatalf("%d rows of values, rows_shown %d", len(got.Values), got.Shown)
			}
			bad := 0
			for r, row := range got.Values {
				if int64(len(row)) != rowLen {
					t.Fatalf("row %d has %d values, want %d", r, len(row), rowLen)
				}
				for j, v := range row {
					w := want[int64(r)*rowLen+int64(j)]
					ok := false
					if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
						ok = v == "" // null
					} else if f, err := strconv.ParseFloat(string(v), 64); err == nil {
						// Exact, and -0 is written "-0".
						ok = float32(f) == w && float64(float32(f)) == f && math.Signbit(f) == math.Signbit(float64(w))
					}
					if !ok && bad < 5 {
						t.Errorf("value [%d][%d] = %q, want %g", r, j, v, w)
					}
					if !ok {
						bad++
					}
				}
			}
			s := got.Summary
			if s.Count != ws.count || s.NaN != mt.NaN || s.PosInf != mt.PosInf || s.NegInf != mt.NegInf || s.Zeros != ws.zeros {
				t.Errorf("summary count %d NaN %d +Inf %d -Inf %d zeros %d; want %d %d %d %d %d (manifest: NaN %d +Inf %d -Inf %d)",
					s.Count, s.NaN, s.PosInf, s.NegInf, s.Zeros, ws.count, ws.nan, ws.posInf, ws.negInf, ws.zeros, mt.NaN, mt.PosInf, mt.NegInf)
			}
			num := func(n json.Number) float64 { f, _ := strconv.ParseFloat(string(n), 64); return f }
			if num(s.Min) != ws.min || num(s.Max) != ws.max || math.Abs(num(s.Mean)-ws.mean) > 1e-12*math.Max(1, math.Abs(ws.mean)) {
				t.Errorf("summary min %s max %s mean %s; want %g %g %g", s.Min, s.Max, s.Mean, ws.min, ws.max, ws.mean)
			}

			// The text summary line says the same.
			code, out, errs := runQKV(200, "cat", "--rows", "2", gguf, mt.Name)
			if code != 0 {
				t.Fatalf("cat: exit %d: %s", code, errs)
			}
			line := fmt.Sprintf("NaN %d, +Inf %d, -Inf %d, zeros %d", ws.nan, ws.posInf, ws.negInf, ws.zeros)
			if !strings.Contains(out, fmt.Sprintf("%d values; min ", ws.count)) || !strings.Contains(out, line) {
				t.Errorf("text output lacks %q:\n%s", line, out)
			}
			if head := summarize(want[:2*rowLen]); head.nan+head.posInf+head.negInf > 0 && !strings.Contains(out, "NaN") && !strings.Contains(out, "Inf") {
				t.Errorf("text rows do not mark the non-finite values:\n%s", out)
			}
		})
	}
	if checked != 4 {
		t.Errorf("manifest lists %d of the 4 tensors this test checks", checked)
	}
}

// TestCatFinite: a tensor with no special values; the JSON has no nulls,
// --rows limits the rows shown and the summary still covers all of them.
func TestCatFinite(t *testing.T) {
	root := testref.RepoRoot()
	path := filepath.Join(root, "testdata/gguf/tiny-llama-v3-f32.gguf")
	want := ggufF32Values(t, path)["blk.0.attn_k.weight"].F32()
	var got catJSON
	runJSONInto(t, &got, "cat", "--json", "--rows", "3", path, "blk.0.attn_k.weight")
	if got.Rows != 16 || got.RowLen != 64 || got.Shown != 3 || len(got.Values) != 3 {
		t.Fatalf("rows %d row_len %d shown %d values %d; want 16 64 3 3", got.Rows, got.RowLen, got.Shown, len(got.Values))
	}
	for r, row := range got.Values {
		for j, v := range row {
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || float32(f) != want[r*64+j] {
				t.Fatalf("value [%d][%d] = %q, want %g", r, j, v, want[r*64+j])
			}
		}
	}
	ws := summarize(want)
	if got.Summary.Count != 1024 || got.Summary.NaN != 0 || got.Summary.Zeros != ws.zeros {
		t.Errorf("summary %+v", got.Summary)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cat", path, "no.such.tensor"}, cmd.ExitInput, `no tensor named "no.such.tensor"`},
		{[]string{"cat", "--rows", "-1", path, "blk.0.attn_k.weight"}, cmd.ExitUsage, "--rows"},
		{[]string{"cat", path}, cmd.ExitUsage, "accepts 2 arg"},
	} {
		code, out, errs := runQKV(80, c.args...)
		if code != c.code || out != "" || !strings.Contains(errs, c.msg) {
			t.Errorf("qkv %v: exit %d stdout %q stderr %q; want %d and %q", c.args, code, out, errs, c.code, c.msg)
		}
	}
}
