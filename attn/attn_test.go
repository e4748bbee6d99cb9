package attn

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

func randMatrix(r *rand.Rand, rows, cols int, scale float64) formats.Matrix {
	m := formats.NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = float32(r.NormFloat64() * scale)
	}
	return m
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	return randMatrix(r, 1, n, scale).Data
}

// testModel returns a random layer of the given geometry.
func testModel(seed uint64, g formats.Geometry) *formats.Layer {
	r := rand.New(rand.NewPCG(seed, 1))
	qd, kvd := g.NHeads*g.HeadDim, g.NKVHeads*g.HeadDim
	return &formats.Layer{
		Q: randMatrix(r, qd, g.DModel, 0.3), K: randMatrix(r, kvd, g.DModel, 0.3),
		V: randMatrix(r, kvd, g.DModel, 0.3), O: randMatrix(r, g.DModel, qd, 0.3),
		QBias: randVec(r, qd, 0.1), KBias: randVec(r, kvd, 0.1), VBias: randVec(r, kvd, 0.1), OBias: randVec(r, g.DModel, 0.1),
		NormWeight: randVec(r, g.DModel, 1), NormBias: randVec(r, g.DModel, 0.1),
	}
}

func testGeometry() formats.Geometry {
	return formats.Geometry{Arch: "test", DModel: 16, NLayers: 1, NHeads: 4, NKVHeads: 2, HeadDim: 8,
		Causal: true, RotaryDims: 8, RopeTheta: 10000, Norm: formats.NormRMS, NormEps: 1e-5, PreNorm: true}
}

func TestUniformWhenQZero(t *testing.T) {
	for _, causal := range []bool{true, false} {
		g := testGeometry()
		g.Causal = causal
		l := testModel(1, g)
		clear(l.Q.Data)
		l.QBias = nil
		x, _, err := RandomInput(6, g.DModel, 7, 1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(g, l, x, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for h, head := range res.Probs {
			var ent float64
			for i, row := range head {
				n := len(row)
				if causal {
					n = i + 1
				}
				ent += math.Log(float64(n))
				for j, p := range row {
					want := 1 / float32(n)
					if j >= n {
						want = 0
					}
					if math.Abs(float64(p-want)) > 1e-7 {
						t.Fatalf("causal=%v head %d [%d,%d] = %g, want %g", causal, h, i, j, p, want)
					}
				}
			}
			if m := res.Heads[h]; math.Abs(m.Entropy-ent/6) > 1e-6 || m.MaxLogit != 0 {
				t.Errorf("head %d: entropy %g want %g, max_logit %g want 0", h, m.Entropy, ent/6, m.MaxLogit)
			}
		}
	}
}

func TestCausalMaskAndOverride(t *testing.T) {
	g := testGeometry()
	l := testModel(2, g)
	x, _, _ := RandomInput(9, g.DModel, 3, 1)
	off := false
	for _, tc := range []struct {
		opt    Options
		causal bool
	}{{Options{}, true}, {Options{Causal: &off}, false}} {
		res, err := Run(g, l, x, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		if res.Settings.Causal != tc.causal {
			t.Errorf("settings causal %v, want %v", res.Settings.Causal, tc.causal)
		}
		upper := 0.0
		for _, head := range res.Probs {
			for i, row := range head {
				var sum float64
				for j, p := range row {
					sum += float64(p)
					if j > i {
						upper += float64(p)
					}
				}
				if math.Abs(sum-1) > 1e-6 {
					t.Errorf("row %d sums to %g", i, sum)
				}
			}
		}
		if tc.causal && upper != 0 {
			t.Errorf("causal: %g probability above the diagonal", upper)
		}
		if !tc.causal && upper == 0 {
			t.Error("not causal, but nothing above the diagonal")
		}
	}
}

// TestGQAMapping checks that grouped-query attention equals multi-head
// attention with each KV head copied to the query heads that share it.
func TestGQAMapping(t *testing.T) {
	for _, kv := range []int{1, 2, 4} {
		g := testGeometry()
		g.NKVHeads = kv
		l := testModel(3, g)
		x, _, _ := RandomInput(7, g.DModel, 4, 1)
		gqa, err := Run(g, l, x, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mha := *l
		gm := g
		gm.NKVHeads = g.NHeads
		hd := g.HeadDim
		expand := func(m formats.Matrix, b []float32) (formats.Matrix, []float32) {
			out := formats.NewMatrix(g.NHeads*hd, m.Cols)
			ob := make([]float32, g.NHeads*hd)
			for h := 0; h < g.NHeads; h++ {
				kg := h / (g.NHeads / kv)
				copy(out.Data[h*hd*m.Cols:(h+1)*hd*m.Cols], m.Data[kg*hd*m.Cols:(kg+1)*hd*m.Cols])
				copy(ob[h*hd:(h+1)*hd], b[kg*hd:(kg+1)*hd])
			}
			return out, ob
		}
		mha.K, mha.KBias = expand(l.K, l.KBias)
		mha.V, mha.VBias = expand(l.V, l.VBias)
		ref, err := Run(gm, &mha, x, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for h := range ref.Probs {
			for i := range ref.Probs[h] {
				if d := maxAbsDiff(gqa.Probs[h][i], ref.Probs[h][i]); d > 1e-6 {
					t.Fatalf("kv=%d head %d row %d differs by %g", kv, h, i, d)
				}
			}
		}
		if d := relFro(gqa.Out.Data, ref.Out.Data); d > 1e-6 {
			t.Errorf("kv=%d: out differs by %g", kv, d)
		}
	}
}

func TestRoPE(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const T, n, hd, rot = 5, 3, 10, 6
	x := randVec(r, T*n*hd, 1)
	orig := append([]float32(nil), x...)
	cos, sin := ropeTable(T, defaultInvFreq(rot, 10000), 1)
	applyRotary(x, T, n*hd, n, hd, 0, rot, false, cos, sin)
	// Position 0 is the identity, and dims past rot pass through.
	for i := 0; i < n*hd; i++ {
		if x[i] != orig[i] {
			t.Fatalf("position 0 changed value %d: %g → %g", i, orig[i], x[i])
		}
	}
	for p := 0; p < T; p++ {
		for h := 0; h < n; h++ {
			for d := rot; d < hd; d++ {
				if k := (p*n+h)*hd + d; x[k] != orig[k] {
					t.Fatalf("pos %d head %d dim %d (past rotary_dims) changed", p, h, d)
				}
			}
			// Position p rotates pair (i, i+rot/2) by p·θ^(−2i/rot).
			for i := 0; i < rot/2; i++ {
				a := float64(p) * math.Pow(10000, -2*float64(i)/rot)
				k := (p*n + h) * hd
				x1, x2 := float64(orig[k+i]), float64(orig[k+i+rot/2])
				w1, w2 := x1*math.Cos(a)-x2*math.Sin(a), x2*math.Cos(a)+x1*math.Sin(a)
				if math.Abs(w1-float64(x[k+i])) > 1e-5 || math.Abs(w2-float64(x[k+i+rot/2])) > 1e-5 {
					t.Fatalf("pos %d head %d pair %d: got (%g, %g), want (%g, %g)", p, h, i, x[k+i], x[k+i+rot/2], w1, w2)
				}
			}
		}
	}
}

// TestRoPERelative: with the same q and k at every position, RoPE scores
// depend only on the offset i − j.
func TestRoPERelative(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	l := &formats.Layer{Q: randMatrix(r, 8, 8, 1), K: randMatrix(r, 8, 8, 1)}
	const T = 6
	x := formats.NewMatrix(T, 8)
	row := randVec(r, 8, 1)
	for i := 0; i < T; i++ {
		copy(x.Row(i), row)
	}
	// Recompute q·k with RoPE and compare along diagonals.
	q := linear(x, l.Q, nil)
	k := linear(x, l.K, nil)
	cos, sin := ropeTable(T, defaultInvFreq(8, 10000), 1)
	applyRotary(q.Data, T, 8, 1, 8, 0, 8, false, cos, sin)
	applyRotary(k.Data, T, 8, 1, 8, 0, 8, false, cos, sin)
	dot := func(i, j int) float64 {
		var s float64
		for d := 0; d < 8; d++ {
			s += float64(q.At(i, d)) * float64(k.At(j, d))
		}
		return s
	}
	for i := 1; i < T; i++ {
		for j := 1; j < T; j++ {
			if d := math.Abs(dot(i, j) - dot(i-1, j-1)); d > 1e-4 {
				t.Errorf("score(%d,%d) − score(%d,%d) = %g", i, j, i-1, j-1, d)
			}
		}
	}
}

// pressSlopes is the ALiBi slope rule as published (Press et al., 2022):
// geometric 2^(−8/n·k) for a power of two n, else the slopes for the closest
// power of two followed by every other slope of twice that many heads.
func pressSlopes(n int) []float64 {
	pow2 := func(n int) []float64 {
		start := math.Pow(2, -math.Pow(2, -(math.Log2(float64(n))-3)))
		out := make([]float64, n)
		for i := range out {
			out[i] = start * math.Pow(start, float64(i))
		}
		return out
	}
	if l := math.Log2(float64(n)); l == math.Floor(l) {
		return pow2(n)
	}
	closest := int(math.Pow(2, math.Floor(math.Log2(float64(n)))))
	out := pow2(closest)
	extra := pow2(2 * closest)
	for i := 0; i < 2*closest && len(out) < n; i += 2 {
		out = append(out, extra[i])
	}
	return out
}

func TestALiBiSlopes(t *testing.T) {
	for _, n := range []int{1, 4, 8, 12, 16, 24, 30, 32} {
		got, want := ALiBiSlopes(n), pressSlopes(n)
		if len(got) != n {
			t.Fatalf("n=%d: %d slopes", n, len(got))
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-15*want[i] {
				t.Errorf("n=%d slope %d: %g, want %g", n, i, got[i], want[i])
			}
		}
	}
	// The published values for 8 heads are 1/2, 1/4, …, 1/256.
	for i, s := range ALiBiSlopes(8) {
		if s != math.Pow(2, -float64(i+1)) {
			t.Errorf("8 heads slope %d = %g", i, s)
		}
	}
	if s := ALiBiSlopes(12); math.Abs(s[8]/math.Pow(2, -0.5)-1) > 1e-15 || math.Abs(s[11]/math.Pow(2, -3.5)-1) > 1e-14 {
		t.Errorf("12 heads extra slopes %v", s[8:])
	}
}

func TestALiBiBias(t *testing.T) {
	// With q = 0 the logits are the ALiBi bias alone: row i has
	// p_ij ∝ exp(slope·(j−i)).
	g := formats.Geometry{DModel: 4, NHeads: 2, NKVHeads: 2, HeadDim: 2, ALiBi: true, Causal: true}
	r := rand.New(rand.NewPCG(8, 8))
	l := &formats.Layer{Q: formats.NewMatrix(4, 4), K: randMatrix(r, 4, 4, 1), V: randMatrix(r, 4, 4, 1), O: randMatrix(r, 4, 4, 1)}
	x, _, _ := RandomInput(5, 4, 1, 1)
	res, err := Run(g, l, x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	slopes := ALiBiSlopes(2)
	for h := range res.Probs {
		for i, row := range res.Probs[h] {
			var z float64
			for j := 0; j <= i; j++ {
				z += math.Exp(slopes[h] * float64(j-i))
			}
			for j := 0; j <= i; j++ {
				want := math.Exp(slopes[h]*float64(j-i)) / z
				if math.Abs(float64(row[j])-want) > 1e-6 {
					t.Errorf("head %d [%d,%d] = %g, want %g", h, i, j, row[j], want)
				}
			}
		}
		if res.Heads[h].MaxLogit != 0 {
			t.Errorf("head %d max logit %g, want 0 (the diagonal's bias)", h, res.Heads[h].MaxLogit)
		}
	}
}

// probEntropy is the mean row entropy −Σ p ln p of a T×T pattern.
func probEntropy(p []float32, T int) float64 {
	var e float64
	for _, v := range p {
		if v > 0 {
			e -= float64(v) * math.Log(float64(v))
		}
	}
	return e / float64(T)
}

func TestMetrics(t *testing.T) {
	// Causal logits whose softmax is a hand-made 3×3 pattern:
	// [1], [½ ½], [¼ ¼ ½]; masked cells hold junk that must be ignored.
	ln2 := math.Ln2
	p := []float32{
		5, 99, 99,
		0, 0, 99,
		0, 0, float32(ln2),
	}
	maxLogit, ent, _ := softmaxRows(p, 3, rowRule{scale: 1, causal: true})
	want := []float32{1, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.5}
	if d := maxAbsDiff(p, want); d > 1e-7 {
		t.Fatalf("softmax %v, want %v", p, want)
	}
	m, bad := headMetrics(2, p, 3, maxLogit, ent)
	wantM := HeadMetrics{Head: 2,
		Entropy:   (0 + ln2 + (0.5*math.Log(4) + 0.5*ln2)) / 3,
		MaxProb:   (1 + 0.5 + 0.5) / 3,
		SinkMass:  (1 + 0.5 + 0.25) / 3,
		PrevToken: (0.5 + 0.25) / 2,
		Diagonal:  (1 + 0.5 + 0.5) / 3,
		MaxLogit:  5}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"entropy", m.Entropy, wantM.Entropy}, {"max_prob", m.MaxProb, wantM.MaxProb}, {"sink", m.SinkMass, wantM.SinkMass},
		{"prev", m.PrevToken, wantM.PrevToken}, {"diag", m.Diagonal, wantM.Diagonal}, {"max_logit", m.MaxLogit, wantM.MaxLogit}} {
		if math.Abs(c.got-c.want) > 1e-7 {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
	if bad != 0 {
		t.Errorf("%d non-finite", bad)
	}
	if m, _ := headMetrics(0, []float32{1}, 1, 0, 0); !math.IsNaN(m.PrevToken) {
		t.Errorf("T=1 prev_token = %g, want NaN", m.PrevToken)
	}
	// The entropy from the logits agrees with −Σ p ln p on a random layer.
	g := testGeometry()
	x, _, _ := RandomInput(20, g.DModel, 5, 2)
	res, err := Run(g, testModel(12, g), x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for h, head := range res.Probs {
		var flat []float32
		for _, row := range head {
			flat = append(flat, row...)
		}
		if d := math.Abs(probEntropy(flat, 20) - res.Heads[h].Entropy); d > 1e-6 {
			t.Errorf("head %d: entropy %g, from the probabilities %g", h, res.Heads[h].Entropy, probEntropy(flat, 20))
		}
	}
}

func TestExpNonPositive(t *testing.T) {
	for x := 0.0; x > -110; x -= 0.0137 {
		got, want := expNonPositive(x), math.Exp(x)
		if x < -104 {
			want = 0
		}
		if math.Abs(got-want) > 2e-9*want {
			t.Fatalf("exp(%g) = %g, want %g", x, got, want)
		}
	}
	if expNonPositive(math.Inf(-1)) != 0 || !math.IsNaN(expNonPositive(math.NaN())) {
		t.Error("exp(−Inf) or exp(NaN)")
	}
}

func TestNorms(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	w := []float32{1, 1, 2, 0.5}
	out := make([]float32, 4)
	rmsNorm(out, x, w, 4, 0)
	rms := math.Sqrt((1 + 4 + 9 + 16) / 4.0)
	for i := range x {
		if want := float64(x[i]) / rms * float64(w[i]); math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("rmsnorm[%d] = %g, want %g", i, out[i], want)
		}
	}
	b := []float32{0, 1, 0, -1}
	layerNorm(out, x, w, b, 4, 0)
	sd := math.Sqrt(1.25)
	for i := range x {
		if want := (float64(x[i])-2.5)/sd*float64(w[i]) + float64(b[i]); math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("layernorm[%d] = %g, want %g", i, out[i], want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	g := testGeometry()
	good := testModel(9, g)
	x, _, _ := RandomInput(4, g.DModel, 1, 1)
	mut := func(f func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix)) (formats.Geometry, *formats.Layer, formats.Matrix) {
		gg, ll, xx := g, *good, x
		f(&gg, &ll, &xx)
		return gg, &ll, xx
	}
	cases := map[string]func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix){
		"kv not dividing": func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.NKVHeads = 3 },
		"zero heads":      func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.NHeads = 0 },
		"odd rotary":      func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.RotaryDims = 3 },
		"rotary > hd":     func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.RotaryDims = 10 },
		"bad theta":       func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.RopeTheta = 0 },
		"bad norm":        func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { g.Norm = "batchnorm" },
		"short Q":         func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { l.Q.Data = l.Q.Data[:5] },
		"wrong K rows":    func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { l.K.Rows = 4 },
		"short bias":      func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { l.VBias = l.VBias[:3] },
		"no norm weight":  func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { l.NormWeight = nil },
		"x width":         func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { *x = formats.NewMatrix(4, 15) },
		"empty x":         func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) { *x = formats.Matrix{Cols: 16} },
		"huge T": func(g *formats.Geometry, l *formats.Layer, x *formats.Matrix) {
			*x = formats.Matrix{Rows: 1 << 20, Cols: 16}
		},
	}
	for name, f := range cases {
		gg, ll, xx := mut(f)
		if _, err := Run(gg, ll, xx, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Run(g, nil, x, Options{}); err == nil {
		t.Error("nil layer: no error")
	}
	if _, err := Run(g, good, x, Options{}); err != nil {
		t.Errorf("good layer: %v", err)
	}
}

func TestNonFinite(t *testing.T) {
	g := testGeometry()
	l := testModel(10, g)
	x, _, _ := RandomInput(4, g.DModel, 1, 1)
	x.Data[5] = float32(math.NaN())
	res, err := Run(g, l, x, Options{NoNorm: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.NonFiniteProbs == 0 || res.NonFiniteOut == 0 {
		t.Errorf("NaN input: non-finite counts %d/%d", res.NonFiniteProbs, res.NonFiniteOut)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, NewDocument([]*Result{res}, true)); err != nil {
		t.Fatalf("JSON with NaN: %v", err)
	}
	if !json.Valid(buf.Bytes()) || !strings.Contains(buf.String(), `"non_finite": true`) {
		t.Errorf("JSON with NaN is not valid or lacks the flag:\n%.400s", buf.String())
	}
}

func TestJSONDocument(t *testing.T) {
	g := testGeometry()
	l := testModel(11, g)
	x, info, _ := RandomInput(5, g.DModel, 42, 0.5)
	res, err := Run(g, l, x, Options{Input: info})
	if err != nil {
		t.Fatal(err)
	}
	for _, withPatterns := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteJSON(&buf, NewDocument([]*Result{res}, withPatterns)); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Schema   string         `json:"schema"`
			Settings map[string]any `json:"settings"`
			Layers   []struct {
				Index    int                `json:"index"`
				Heads    []map[string]any   `json:"heads"`
				Patterns [][][]float32      `json:"patterns"`
				Rest     map[string]float64 `json:"-"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Schema != "qkv.attn/v1" || len(doc.Layers) != 1 || len(doc.Layers[0].Heads) != 4 {
			t.Fatalf("document: %s", buf.String())
		}
		for _, k := range []string{"head", "entropy", "max_prob", "sink_mass", "prev_token", "diagonal", "max_logit"} {
			if _, ok := doc.Layers[0].Heads[0][k]; !ok {
				t.Errorf("head metrics lack %q", k)
			}
		}
		in, _ := doc.Settings["input"].(map[string]any)
		if in["seed"] != float64(42) || in["kind"] != "random" {
			t.Errorf("settings.input = %v", doc.Settings["input"])
		}
		if got := doc.Layers[0].Patterns != nil; got != withPatterns {
			t.Errorf("patterns present = %v, want %v", got, withPatterns)
		}
		if withPatterns && doc.Layers[0].Patterns[1][3][2] != res.Probs[1][3][2] {
			t.Errorf("pattern value %g, want %g", doc.Layers[0].Patterns[1][3][2], res.Probs[1][3][2])
		}
	}
}

func TestRandomInput(t *testing.T) {
	a, info, err := RandomInput(3, 4, 9, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := RandomInput(3, 4, 9, 0.5)
	c, _, _ := RandomInput(3, 4, 10, 0.5)
	if maxAbsDiff(a.Data, b.Data) != 0 || maxAbsDiff(a.Data, c.Data) == 0 {
		t.Error("RandomInput is not a function of its seed")
	}
	r := rand.New(rand.NewPCG(9, 0))
	if want := float32(r.NormFloat64() * 0.5); a.Data[0] != want {
		t.Errorf("first value %g, want %g (PCG(seed, 0))", a.Data[0], want)
	}
	if info.Generator != RandomGenerator || info.Kind != "random" || info.Seed == nil || *info.Seed != 9 {
		t.Errorf("info %+v", info)
	}
	if _, _, err := RandomInput(0, 4, 1, 1); err == nil {
		t.Error("T = 0: no error")
	}
}

func TestBuildInputErrors(t *testing.T) {
	rows := formats.NewMatrix(3, 4)
	for name, e := range map[string]EmbeddingInput{
		"empty":          {},
		"short data":     {TokenRows: formats.Matrix{Rows: 3, Cols: 4, Data: make([]float32, 5)}},
		"positions rows": {TokenRows: rows, Positions: formats.NewMatrix(2, 4)},
		"type width":     {TokenRows: rows, TokenType: make([]float32, 3)},
		"norm width":     {TokenRows: rows, NormWeight: make([]float32, 5)},
		"norm bias":      {TokenRows: rows, NormWeight: make([]float32, 4), NormBias: make([]float32, 2)},
	} {
		if _, err := BuildInput(e); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	x, err := BuildInput(EmbeddingInput{TokenRows: formats.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 2}},
		Positions: formats.Matrix{Rows: 1, Cols: 2, Data: []float32{0.5, 0.25}}, TokenType: []float32{1, 1}})
	if err != nil || x.Data[0] != 2.5 || x.Data[1] != 3.25 {
		t.Errorf("sum: %v %v", x.Data, err)
	}
	x, err = BuildInput(EmbeddingInput{TokenRows: formats.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 2}}, TokenScale: 8,
		Positions: formats.Matrix{Rows: 1, Cols: 2, Data: []float32{0.5, 0.25}}})
	if err != nil || x.Data[0] != 8.5 || x.Data[1] != 16.25 {
		t.Errorf("scaled sum: %v %v", x.Data, err)
	}
}
