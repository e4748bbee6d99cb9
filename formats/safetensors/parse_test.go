package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// file builds a safetensors file from a header and dataLen bytes of data.
func file(hdr string, dataLen int) []byte {
	b := make([]byte, 8, 8+len(hdr)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	for i := 0; i < dataLen; i++ {
		b = append(b, byte(i))
	}
	return b
}

// at is the file offset of the first occurrence of sub in hdr.
func at(hdr, sub string) int64 {
	i := strings.Index(hdr, sub)
	if i < 0 {
		panic("at: " + sub + " not in " + hdr)
	}
	return 8 + int64(i)
}

// lenPrefix returns just the 8-byte header length n followed by rest.
func lenPrefix(n uint64, rest string) []byte {
	b := make([]byte, 8, 8+len(rest))
	binary.LittleEndian.PutUint64(b, n)
	return append(b, rest...)
}

func TestParseErrors(t *testing.T) {
	const f32x4 = `"dtype":"F32","shape":[4],"data_offsets":[0,16]`
	type tc struct {
		name string
		data []byte
		opts Options
		want string
	}
	var cases []tc
	add := func(name string, data []byte, want string) {
		cases = append(cases, tc{name: name, data: data, want: want})
	}
	addH := func(name, hdr string, dataLen int, want func(h string) string) {
		cases = append(cases, tc{name: name, data: file(hdr, dataLen), want: want(hdr)})
	}

	// Length prefix.
	add("empty file", nil, "file is 0 bytes, too short for the 8-byte header length (at byte 0)")
	add("short file", []byte{1, 2, 3}, "file is 3 bytes, too short for the 8-byte header length (at byte 0)")
	add("zero header length", lenPrefix(0, "{}"), "header length is 0 (at byte 0)")
	add("header over default limit", lenPrefix(100_000_001, "{}"),
		"header is 100000001 bytes, more than the limit of 100000000; raise it with --max-header (at byte 0)")
	add("header length beyond int64", lenPrefix(1<<63+5, "{}"),
		"header is 9223372036854775813 bytes, more than the limit of 100000000; raise it with --max-header (at byte 0)")
	cases = append(cases, tc{name: "header over custom limit", data: file(`{}      `, 0), opts: Options{MaxHeaderBytes: 4},
		want: "header is 8 bytes, more than the limit of 4; raise it with --max-header (at byte 0)"})
	add("header past end of file", lenPrefix(100, `{"a":1}`),
		"header length 100 runs past the end of the file (15 bytes) (at byte 0)")
	add("header one byte past end", lenPrefix(3, `{}`),
		"header length 3 runs past the end of the file (10 bytes) (at byte 0)")

	// Header text.
	addH("invalid UTF-8", "{\"ab\xff\":{}}", 0, func(h string) string {
		return "header is not valid UTF-8 (at byte 12)"
	})
	addH("truncated UTF-8 sequence", "{\"ab\xc3\":{}}  ", 0, func(h string) string {
		return "header is not valid UTF-8 (at byte 12)"
	})
	addH("leading space", ` {}     `, 0, func(h string) string {
		return "header must begin with '{', not byte 0x20 (at byte 8)"
	})
	addH("array header", `[]      `, 0, func(h string) string {
		return `header must begin with '{', not '[' (at byte 8)`
	})
	addH("invalid JSON", `{"a" {}}`, 0, func(h string) string {
		return fmt.Sprintf("invalid JSON in header: invalid character '{' after object key (at byte %d)", at(h, " {")+1)
	})
	addH("invalid literal", `{"__metadata__":{"a":tru}}`, 0, func(h string) string {
		return fmt.Sprintf("invalid JSON in header: invalid character '}' in literal true (expecting 'e') (at byte %d)", at(h, "}"))
	})
	addH("trailing comma", `{"__metadata__":{"a":"b",}}`, 0, func(h string) string {
		return fmt.Sprintf("invalid JSON in header: invalid character '}' looking for beginning of object key string (at byte %d)", at(h, ",}")+1)
	})
	addH("control character in name", "{\"a\x01\":{}}", 0, func(h string) string {
		return `invalid JSON in header: invalid character '\x01' in string literal (at byte 11)`
	})
	addH("bad escape", `{"a\x":{}}  `, 0, func(h string) string {
		return `invalid JSON in header: invalid character 'x' in string escape code (at byte 12)`
	})
	addH("unterminated object", `{"a":{"dtype":"F32"`, 0, func(h string) string {
		return fmt.Sprintf("invalid JSON in header: it ends before the object is closed (at byte %d)", 8+len(h))
	})
	addH("leading zero", `{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`, 4, func(h string) string {
		return fmt.Sprintf("invalid JSON in header: invalid character '1' after array element (at byte %d)", at(h, "1]"))
	})
	addH("trailing newline", "{}\n     ", 0, func(h string) string {
		return "header has byte 0x0a after its JSON object; only spaces may pad it (at byte 10)"
	})
	addH("trailing garbage", `{}  x   `, 0, func(h string) string {
		return `header has 'x' after its JSON object; only spaces may pad it (at byte 12)`
	})
	addH("second object", `{}{}    `, 0, func(h string) string {
		return `header has '{' after its JSON object; only spaces may pad it (at byte 10)`
	})
	addH("trailing NUL padding", "{}\x00\x00\x00\x00\x00\x00", 0, func(h string) string {
		return "header has byte 0x00 after its JSON object; only spaces may pad it (at byte 10)"
	})
	addH("unpaired high surrogate", `{"a\ud800b":{`+f32x4+`}}`, 16, func(h string) string {
		return fmt.Sprintf(`invalid JSON in header: \u escape is an unpaired UTF-16 surrogate (at byte %d)`, at(h, `\ud800`))
	})
	addH("high surrogate before a non-surrogate escape", `{"__metadata__":{"k":"x\ud83d\u0041"}}`, 0, func(h string) string {
		return fmt.Sprintf(`invalid JSON in header: \u escape is an unpaired UTF-16 surrogate (at byte %d)`, at(h, `\ud83d`))
	})
	addH("deep nesting in an unknown field", `{"w":{"x":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}}`, 0, func(h string) string {
		return fmt.Sprintf(`invalid JSON in header: nested more than 128 levels deep (at byte %d)`, at(h, "[")+126)
	})
	addH("nesting at the limit is fine", `{"w":{"x":`+strings.Repeat("[", 126)+strings.Repeat("]", 126)+`,"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 0, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets [0, 4] run past the end of the data buffer (0 bytes) (at byte %d)`, 8+len(h))
	})
	addH("unpaired low surrogate", `{"__metadata__":{"k":"\udc00"}}`, 0, func(h string) string {
		return fmt.Sprintf(`invalid JSON in header: \u escape is an unpaired UTF-16 surrogate (at byte %d)`, at(h, `\udc00`))
	})

	// Keys.
	addH("duplicate tensor", `{"a":{`+f32x4+`},"b":{`+f32x4+`},"a":{`+f32x4+`}}`, 16, func(h string) string {
		return fmt.Sprintf(`duplicate key "a" in header (first at byte 9) (at byte %d)`, at(h, `},"a"`)+2)
	})
	addH("duplicate __metadata__", `{"__metadata__":{},"__metadata__":{}}`, 0, func(h string) string {
		return fmt.Sprintf(`duplicate key "__metadata__" in header (first at byte 9) (at byte %d)`, at(h, `,"__`)+1)
	})

	// __metadata__.
	addH("metadata is an array", `{"__metadata__":["pt"]}`, 0, func(h string) string {
		return fmt.Sprintf("__metadata__ must be an object of strings, not an array (at byte %d)", at(h, "["))
	})
	addH("metadata is a string", `{"__metadata__":"pt"}`, 0, func(h string) string {
		return fmt.Sprintf("__metadata__ must be an object of strings, not a string (at byte %d)", at(h, `"pt"`))
	})
	addH("metadata number value", `{"__metadata__":{"format":"pt","n": 1}}`, 0, func(h string) string {
		return fmt.Sprintf(`__metadata__ value for key "n" is a number, not a string (at byte %d)`, at(h, "1"))
	})
	addH("metadata object value", `{"__metadata__":{"nested":{"a":"b"}}}`, 0, func(h string) string {
		return fmt.Sprintf(`__metadata__ value for key "nested" is an object, not a string (at byte %d)`, at(h, `{"a"`))
	})
	addH("metadata null value", `{"__metadata__":{"k":null}}`, 0, func(h string) string {
		return fmt.Sprintf(`__metadata__ value for key "k" is null, not a string (at byte %d)`, at(h, "null"))
	})
	addH("metadata duplicate key", `{"__metadata__":{"k":"1","k":"2"}}`, 0, func(h string) string {
		return fmt.Sprintf(`duplicate key "k" in __metadata__ (first at byte %d) (at byte %d)`, at(h, `"k"`), at(h, `,"k"`)+1)
	})

	// Tensor entries.
	addH("entry is a number", `{"a":1}`, 0, func(h string) string {
		return fmt.Sprintf(`tensor "a": entry must be an object with dtype, shape and data_offsets, not a number (at byte %d)`, at(h, "1"))
	})
	addH("missing dtype", `{"w":{"shape":[4],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return `tensor "w": entry has no dtype (at byte 9)`
	})
	addH("missing shape", `{"w":{"dtype":"F32","data_offsets":[0,16]}}`, 16, func(h string) string {
		return `tensor "w": entry has no shape (at byte 9)`
	})
	addH("missing data_offsets", `{"w":{"dtype":"F32","shape":[4]}}`, 16, func(h string) string {
		return `tensor "w": entry has no data_offsets (at byte 9)`
	})
	addH("duplicate field", `{"w":{"dtype":"F32","shape":[4],"dtype":"F16","data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": duplicate field "dtype" (at byte %d)`, at(h, `,"dtype"`)+1)
	})
	addH("dtype is a number", `{"w":{"dtype":32,"shape":[4],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": dtype must be a string, not a number (at byte %d)`, at(h, "32"))
	})
	addH("shape is a string", `{"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape must be an array of non-negative integers, not a string (at byte %d)`, at(h, `"4"`))
	})
	addH("shape holds a string", `{"w":{"dtype":"F32","shape":[2,"2"],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape must be an array of non-negative integers, but holds a string (at byte %d)`, at(h, `"2"`))
	})
	addH("shape holds an array", `{"w":{"dtype":"F32","shape":[[4]],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape must be an array of non-negative integers, but holds an array (at byte %d)`, at(h, `[4]`))
	})
	addH("negative dimension", `{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape value -4 is negative (at byte %d)`, at(h, "-4"))
	})
	addH("fractional dimension", `{"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape value 4.0 is not an integer (at byte %d)`, at(h, "4.0"))
	})
	addH("exponent dimension", `{"w":{"dtype":"F32","shape":[4e0],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape value 4e0 is not an integer (at byte %d)`, at(h, "4e0"))
	})
	addH("huge dimension", `{"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape value 9223372036854775808 is too large (at byte %d)`, at(h, "9223"))
	})
	addH("shape overflow", `{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape [4294967296, 4294967296] overflows a 64-bit element count (at byte %d)`, at(h, "[4294"))
	})
	addH("shape overflow before a zero", `{"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, 0, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape [4294967296, 4294967296, 0] overflows a 64-bit element count (at byte %d)`, at(h, "[4294"))
	})
	addH("byte size overflow", `{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape [2305843009213693952] does not fit dtype F64: 2305843009213693952 elements of F64 overflow a 64-bit byte size (at byte %d)`, at(h, "[2305"))
	})
	addH("odd F4 count", `{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape [3] does not fit dtype F4: 3 elements is not a whole number of F4 blocks of 2 (at byte %d)`, at(h, "[3]"))
	})
	addH("F6 count not a multiple of 4", `{"w":{"dtype":"F6_E2M3","shape":[2,3],"data_offsets":[0,6]}}`, 6, func(h string) string {
		return fmt.Sprintf(`tensor "w": shape [2, 3] does not fit dtype F6_E2M3: 6 elements is not a whole number of F6_E2M3 blocks of 4 (at byte %d)`, at(h, "[2,3]"))
	})
	addH("data_offsets one value", `{"w":{"dtype":"F32","shape":[4],"data_offsets":[16]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets must be [begin, end], two non-negative integers, but has 1 (at byte %d)`, at(h, "[16]"))
	})
	addH("data_offsets three values", `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets must be [begin, end], two non-negative integers, but has more (at byte %d)`, at(h, ",32]")+1)
	})
	addH("data_offsets object", `{"w":{"dtype":"F32","shape":[4],"data_offsets":{"begin":0}}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets must be [begin, end], two non-negative integers, not an object (at byte %d)`, at(h, `{"begin"`))
	})
	addH("negative offset", `{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets value -16 is negative (at byte %d)`, at(h, "-16"))
	})
	addH("end before begin", `{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}`, 16, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets [16, 0] end before they begin (at byte %d)`, at(h, "[16,0]"))
	})

	// Sizes and layout.
	addH("size mismatch", `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 12, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16 (at byte %d)`, 8+len(h))
	})
	addH("size mismatch second tensor", `{"a":{`+f32x4+`},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,24]}}`, 24, func(h string) string {
		return fmt.Sprintf(`tensor "b": data_offsets [16, 24] hold 8 bytes, but BF16 [3] needs 6 (at byte %d)`, 8+len(h)+16)
	})
	addH("scalar size mismatch", `{"s":{"dtype":"F64","shape":[],"data_offsets":[0,4]}}`, 4, func(h string) string {
		return fmt.Sprintf(`tensor "s": data_offsets [0, 4] hold 4 bytes, but F64 [] needs 8 (at byte %d)`, 8+len(h))
	})
	addH("gap at start", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, func(h string) string {
		return fmt.Sprintf(`tensor "w": data bytes [0, 4) belong to no tensor: the first tensor begins at 4 (at byte %d)`, 8+len(h))
	})
	addH("gap between tensors", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12, func(h string) string {
		return fmt.Sprintf(`tensor "b": gap of 4 bytes between tensor "a" (ends at 4) and this tensor (begins at 8) (at byte %d)`, 8+len(h)+4)
	})
	addH("overlap", `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8, func(h string) string {
		return fmt.Sprintf(`tensor "b": data_offsets [4, 8] overlap tensor "a", which ends at 8 (at byte %d)`, 8+len(h)+4)
	})
	addH("same range twice", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, 4, func(h string) string {
		return fmt.Sprintf(`tensor "b": data_offsets [0, 4] overlap tensor "a", which ends at 4 (at byte %d)`, 8+len(h))
	})
	addH("empty tensor inside another", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, 8, func(h string) string {
		return fmt.Sprintf(`tensor "e": data_offsets [4, 4] overlap tensor "a", which ends at 8 (at byte %d)`, 8+len(h)+4)
	})
	addH("range past end", `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets [0, 8] run past the end of the data buffer (4 bytes) (at byte %d)`, 8+len(h))
	})
	addH("range far past end", `{"w":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, 0, func(h string) string {
		return fmt.Sprintf(`tensor "w": data bytes [0, 9223372036854775806) belong to no tensor: the first tensor begins at 9223372036854775806 (at byte %d)`, 8+len(h))
	})
	addH("trailing bytes", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 7, func(h string) string {
		return fmt.Sprintf(`3 trailing bytes after the last tensor "w" (data buffer is 7 bytes, tensors end at 4) (at byte %d)`, 8+len(h)+4)
	})
	addH("data but no tensors", `{"__metadata__":{"format":"pt"}}`, 5, func(h string) string {
		return fmt.Sprintf(`5 bytes of data follow the header, but it lists no tensors (at byte %d)`, 8+len(h))
	})
	addH("unknown dtype keeps range checks", `{"w":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,3]}}`, 4, func(h string) string {
		return fmt.Sprintf(`1 trailing bytes after the last tensor "w" (data buffer is 4 bytes, tensors end at 3) (at byte %d)`, 8+len(h)+3)
	})
	addH("GGML type name is not a safetensors dtype", `{"w":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,3]}}`, 2, func(h string) string {
		return fmt.Sprintf(`tensor "w": data_offsets [0, 3] run past the end of the data buffer (2 bytes) (at byte %d)`, 8+len(h))
	})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data, c.opts)
			if err == nil {
				t.Fatalf("Parse succeeded with %d tensors, want error %q", len(f.Tensors), c.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %s\nwant %s", err, c.want)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	f32 := dtype.FromSafetensors("F32")
	cases := []struct {
		name    string
		hdr     string
		dataLen int
		opts    Options
		want    File // HeaderLen, DataOffset and Size are filled in
	}{
		{name: "empty object", hdr: `{}`, want: File{}},
		{name: "empty object padded", hdr: `{}      `, want: File{}},
		{name: "whitespace inside", hdr: "{ \"w\" :\n{\t\"dtype\" : \"F32\",\r\n \"shape\" : [ 1 ] , \"data_offsets\":[0,4] } }", dataLen: 4,
			want: File{Tensors: []TensorInfo{{Name: "w", DType: f32, Shape: []int64{1}, Begin: 0, End: 4}}}},
		{name: "metadata and header order", dataLen: 16 + 6 + 8,
			hdr: `{"z":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt","b":"x"},"a":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"m":{"dtype":"I64","shape":[],"data_offsets":[22,30]}}`,
			want: File{Metadata: [][2]string{{"format", "pt"}, {"b", "x"}}, Tensors: []TensorInfo{
				{Name: "z", DType: f32, Shape: []int64{2, 2}, Begin: 0, End: 16},
				{Name: "a", DType: dtype.BF16, Shape: []int64{3}, Begin: 16, End: 22},
				{Name: "m", DType: dtype.FromSafetensors("I64"), Shape: []int64{}, Begin: 22, End: 30},
			}}},
		{name: "null metadata is absent", hdr: `{"__metadata__":null}`, want: File{}},
		{name: "empty metadata", hdr: `{"__metadata__":{}}`, want: File{Metadata: [][2]string{}}},
		{name: "empty tensors share offsets", dataLen: 4,
			hdr: `{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e2":{"dtype":"F16","shape":[3,0],"data_offsets":[4,4]},"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`,
			want: File{Tensors: []TensorInfo{
				{Name: "b", DType: f32, Shape: []int64{1}, Begin: 0, End: 4},
				{Name: "e2", DType: dtype.F16, Shape: []int64{3, 0}, Begin: 4, End: 4},
				{Name: "e1", DType: f32, Shape: []int64{0}, Begin: 0, End: 0},
			}}},
		{name: "only an empty tensor", hdr: `{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`,
			want: File{Tensors: []TensorInfo{{Name: "e", DType: f32, Shape: []int64{0}}}}},
		{name: "unknown fields are ignored", dataLen: 4,
			hdr:  `{"w":{"extra":{"x":[1,{"y":null}],"z":true},"dtype":"F32","shape":[1],"data_offsets":[0,4],"more":-1.5e3}}`,
			want: File{Tensors: []TensorInfo{{Name: "w", DType: f32, Shape: []int64{1}, Begin: 0, End: 4}}}},
		{name: "unknown dtype is listed", dataLen: 3,
			hdr:  `{"w":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,3]}}`,
			want: File{Tensors: []TensorInfo{{Name: "w", DType: dtype.FromSafetensors("F8_E4M3FNUZ"), Shape: []int64{4}, Begin: 0, End: 3}}}},
		{name: "sub-byte dtypes", dataLen: 2 + 3 + 6,
			hdr: `{"f4":{"dtype":"F4","shape":[2,2],"data_offsets":[0,2]},"f6":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[2,5]},"f6b":{"dtype":"F6_E3M2","shape":[2,4],"data_offsets":[5,11]}}`,
			want: File{Tensors: []TensorInfo{
				{Name: "f4", DType: dtype.FromSafetensors("F4"), Shape: []int64{2, 2}, Begin: 0, End: 2},
				{Name: "f6", DType: dtype.FromSafetensors("F6_E2M3"), Shape: []int64{4}, Begin: 2, End: 5},
				{Name: "f6b", DType: dtype.FromSafetensors("F6_E3M2"), Shape: []int64{2, 4}, Begin: 5, End: 11},
			}}},
		{name: "escaped names", dataLen: 8,
			hdr: `{"a\"b\\c\u00e9\ud83d\ude00":{"dtype":"C64","shape":[1],"data_offsets":[0,8]},"__metadata__":{"k\n":"v\u0000"}}`,
			want: File{Metadata: [][2]string{{"k\n", "v\x00"}}, Tensors: []TensorInfo{
				{Name: "a\"b\\cé😀", DType: dtype.FromSafetensors("C64"), Shape: []int64{1}, Begin: 0, End: 8},
			}}},
		{name: "escaped backslash before u is not an escape", dataLen: 1,
			hdr:  `{"a\\ud800":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}`,
			want: File{Tensors: []TensorInfo{{Name: `a\ud800`, DType: dtype.FromSafetensors("I8"), Shape: []int64{1}, Begin: 0, End: 1}}}},
		{name: "header exactly at the limit", hdr: `{}      `, opts: Options{MaxHeaderBytes: 8}, want: File{}},
		{name: "large valid offsets", dataLen: 0,
			hdr:  `{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"__metadata__":{"n":"9223372036854775807"}}`,
			want: File{Metadata: [][2]string{{"n", "9223372036854775807"}}, Tensors: []TensorInfo{{Name: "w", DType: dtype.FromSafetensors("U8"), Shape: []int64{0}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := file(c.hdr, c.dataLen)
			got, err := Parse(data, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			want.HeaderLen = int64(len(c.hdr))
			want.DataOffset = 8 + int64(len(c.hdr))
			want.Size = int64(len(data))
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			for _, ti := range got.Tensors {
				if d := got.TensorData(data, ti); int64(len(d)) != ti.Bytes() {
					t.Errorf("%s: TensorData gave %d bytes, want %d", ti.Name, len(d), ti.Bytes())
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{Offset: 12, Msg: "bad"}, "bad (at byte 12)"},
		{Error{Offset: 0, Tensor: "x", Msg: "bad"}, `tensor "x": bad (at byte 0)`},
		{Error{Offset: 3, Tensor: "a\"\x1b", Msg: "bad"}, `tensor "a\"\x1b": bad (at byte 3)`},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

// header10k builds a header of n F32 tensors of shape [4, 4], with metadata,
// shaped like a real checkpoint's.
func header10k(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"__metadata__":{"format":"pt"}`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"model.layers.%d.self_attn.q_proj.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[%d,%d]}`, i, i*64, (i+1)*64)
	}
	b.WriteString("}")
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return file(b.String(), n*64)
}

func TestParseManyTensors(t *testing.T) {
	data := header10k(10000)
	f, err := Parse(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 10000 || f.Tensors[9999].End != 640000 {
		t.Fatalf("got %d tensors, last ends at %d", len(f.Tensors), f.Tensors[len(f.Tensors)-1].End)
	}
}

func BenchmarkParse10kTensors(b *testing.B) {
	data := header10k(10000)
	hdrLen := int64(binary.LittleEndian.Uint64(data))
	b.SetBytes(hdrLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// fuzzSeeds are FuzzParse's seeds.
func fuzzSeeds() [][]byte {
	return [][]byte{
		file(`{}`, 0),
		file(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, 16),
		file(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2),
		file(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"X","shape":[0],"data_offsets":[2,2]}}`, 2),
		file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, 16),
		file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{}}`, 8),
		file(`{"a\ud800":{}}`, 0),
		file("{}\n", 3),
		lenPrefix(1<<40, "{}"),
		[]byte{1, 0, 0},
		file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[{"k":[true,null,-1.5e3,"\u00e9\ud83d\ude00"]}]}}`, 4),
	}
}

// FuzzParse: no panic, only *Error, nothing encoding/json rejects is
// accepted, a parsed file tiles its data, and the result is exactly the
// reference parser's (errors and offsets included).
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsReference(t, data, Options{MaxHeaderBytes: 1 << 20})
		samePrefix(t, data)
		file, err := Parse(data, Options{MaxHeaderBytes: 1 << 20})
		// Differential check of the JSON grammar against encoding/json.
		if len(data) >= 8 {
			if n := binary.LittleEndian.Uint64(data); n > 0 && n <= uint64(len(data)-8) && n <= 1<<20 {
				if hdr := data[8 : 8+n]; !json.Valid(hdr) && err == nil {
					t.Fatalf("Parse accepted a header encoding/json rejects: %q", hdr)
				}
			}
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			return
		}
		// A file that parses has tensors that tile the data exactly.
		var total int64
		for _, ti := range file.Tensors {
			if ti.Begin < 0 || ti.End < ti.Begin || file.DataOffset+ti.End > file.Size {
				t.Fatalf("tensor %q range [%d, %d] outside data of %d bytes", ti.Name, ti.Begin, ti.End, file.Size-file.DataOffset)
			}
			total += ti.End - ti.Begin
		}
		if total != file.Size-file.DataOffset {
			t.Fatalf("tensors cover %d bytes of %d", total, file.Size-file.DataOffset)
		}
	})
}

// samePrefix: the header alone with the file's size (a header read over the
// network) parses exactly as the whole file does.
func samePrefix(t *testing.T, data []byte) {
	if len(data) < 8 {
		return
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return
	}
	opts := Options{MaxHeaderBytes: 1 << 20}
	whole, werr := Parse(data, opts)
	opts.Size = int64(len(data))
	pre, perr := Parse(data[:8+n:8+n], opts)
	if fmt.Sprint(werr) != fmt.Sprint(perr) || (werr == nil && !reflect.DeepEqual(whole, pre)) {
		t.Fatalf("header alone with the size: %v, the whole file: %v", perr, werr)
	}
}
