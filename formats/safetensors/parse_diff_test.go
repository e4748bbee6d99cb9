package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// sameAsReference checks that Parse gives exactly what the parser it
// replaced gives (refParse, encoding/json's Decoder.Token): the same error
// text and offset, or the same File.
func sameAsReference(t *testing.T, data []byte, opts Options) {
	t.Helper()
	got, err := Parse(data, opts)
	want, werr := refParse(data, opts)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("header %q:\n got  %v\n want %v", header(data), err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("header %q: parsed differently:\n got  %+v\n want %+v", header(data), got, want)
	}
}

func header(data []byte) string {
	if len(data) < 8 {
		return string(data)
	}
	n := min(binary.LittleEndian.Uint64(data), uint64(len(data)-8), 300)
	return string(data[8 : 8+n])
}

// withHeader replaces a file's header by h (the length prefix follows).
func withHeader(data []byte, h string) []byte {
	var dataLen int
	if len(data) >= 8 {
		if n := binary.LittleEndian.Uint64(data); n <= uint64(len(data)-8) {
			dataLen = len(data) - 8 - int(n)
		}
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(out, h...)
	return append(out, make([]byte, dataLen)...)
}

// referenceCorpus is every safetensors file of testdata (the hostile
// corpus included) and the shared fixtures, and the fuzz seeds.
func referenceCorpus(t *testing.T) [][]byte {
	var files [][]byte
	roots := []string{filepath.Join(testref.RepoRoot(), "testdata")}
	if shared := testref.SharedDir(t); shared != "" {
		roots = append(roots, filepath.Join(shared, "fixtures"))
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".safetensors") {
				if b, err := os.ReadFile(p); err == nil {
					files = append(files, b)
				}
			}
			return nil
		})
	}
	return append(files, fuzzSeeds()...)
}

// TestParseAgainstReference: on every file of the corpus, on every cut of
// its header (the length prefix fixed, so the JSON itself ends early), and
// on every single-byte change of the headers of a few small files to a
// byte that matters to JSON, the scanner and the reference agree exactly.
func TestParseAgainstReference(t *testing.T) {
	corpus := referenceCorpus(t)
	n, mutated := 0, 0
	seen := map[string]bool{}
	for _, data := range corpus {
		sameAsReference(t, data, Options{})
		samePrefix(t, data)
		n++
		h := header(data)
		if len(data) < 8 || len(h) > 1000 || seen[h] {
			continue
		}
		seen[h] = true
		for k := 0; k <= len(h); k++ {
			sameAsReference(t, withHeader(data, h[:k]), Options{})
			n++
		}
		// Every byte changed, on a few small headers of different shapes.
		if len(h) > 250 || mutated == 12 {
			continue
		}
		mutated++
		for k := 0; k < len(h); k++ {
			for _, c := range []byte("\"\\,:{}[]0-1.eE+ nx\x01\xc3tfu") {
				b := []byte(h)
				b[k] = c
				sameAsReference(t, withHeader(data, string(b)), Options{})
				n++
			}
		}
	}
	t.Logf("%d headers agree with the reference parser", n)
}

// BenchmarkParseHeader measures the scanner and the reference side by side
// on headers of 10^4 and 10^6 tensors (run with -bench ParseHeader -benchmem;
// the 10^6 header is 110 MB, over the default limit).
func BenchmarkParseHeader(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		data := header10k(n)
		for _, impl := range []struct {
			name  string
			parse func([]byte, Options) (*File, error)
		}{{"scanner", Parse}, {"reference", refParse}} {
			b.Run(fmt.Sprintf("%s/%d", impl.name, n), func(b *testing.B) {
				b.SetBytes(int64(binary.LittleEndian.Uint64(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.parse(data, Options{MaxHeaderBytes: 1 << 30}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
