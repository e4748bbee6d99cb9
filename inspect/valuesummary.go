package inspect

import "math"

// ValueSummary describes a tensor's values: what `qkv cat` prints under them.
// Min, Max and Mean are over the finite values (NaN when there are none);
// sums are accumulated in float64.
type ValueSummary struct {
	Count    int64
	Min, Max float64
	Mean     float64
	NaN      int64
	PosInf   int64
	NegInf   int64
	Zeros    int64
}

// SummarizeValues scans values once.
func SummarizeValues(values []float32) ValueSummary {
	s := ValueSummary{Count: int64(len(values)), Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	var finite int64
	for _, v := range values {
		f := float64(v)
		switch {
		case f != f:
			s.NaN++
			continue
		case math.IsInf(f, 1):
			s.PosInf++
			continue
		case math.IsInf(f, -1):
			s.NegInf++
			continue
		case f == 0:
			s.Zeros++
		}
		finite++
		sum += f
		s.Min = math.Min(s.Min, f)
		s.Max = math.Max(s.Max, f)
	}
	if finite == 0 {
		s.Min, s.Max, s.Mean = math.NaN(), math.NaN(), math.NaN()
	} else {
		s.Mean = sum / float64(finite)
	}
	return s
}
