package formats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"strings"

	"github.com/qkvdev/qkv/formats/source"
)

// Other weight formats, recognised by their bytes (and, for a folder, by the
// names of its files) so that the error says what the file is and how to
// convert it, instead of "not a safetensors or GGUF file".

// foreignSniffBytes is how much of a file's beginning foreignFormat looks at.
const foreignSniffBytes = 4096

// Conversion hints, one per family. DIR is the model's folder, OUT the new one.
const (
	hintTorch = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True) — " +
		"or to GGUF with llama.cpp's convert_hf_to_gguf.py DIR"
	hintTF    = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR, from_tf=True).save_pretrained(OUT, safe_serialization=True)"
	hintFlax  = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR, from_flax=True).save_pretrained(OUT, safe_serialization=True)"
	hintONNX  = "export the model's weights as safetensors from the framework it came from (transformers: save_pretrained(OUT, safe_serialization=True)), or write the graph's initializers with onnx.numpy_helper.to_array and safetensors.numpy.save_file"
	hintNumPy = "write the arrays as safetensors with safetensors.numpy.save_file({NAME: array, …}, \"OUT.safetensors\")"
	hintGGML  = "convert it to GGUF with llama.cpp's convert_llama_ggml_to_gguf.py"
)

// foreignFormat names the format of a file that is not safetensors or GGUF
// from its first bytes, with the way to convert it; "" when it is none
// that qkv knows. name is the file's name (for the formats whose bytes are
// not distinctive enough alone).
func foreignFormat(head []byte, name string) string {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	has := func(prefix string) bool { return bytes.HasPrefix(head, []byte(prefix)) }
	switch {
	case has("PK\x03\x04"):
		return zipFormat(head)
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5:
		// A pickle's PROTO opcode. torch.save's legacy format starts with
		// its magic number as a pickled long (LONG1, 10 bytes).
		if bytes.HasPrefix(head, []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}) {
			return "a PyTorch checkpoint in torch.save's legacy pickle format, which qkv does not read (unpickling runs code); " + hintTorch
		}
		return fmt.Sprintf("a Python pickle (protocol %d, as PyTorch's .bin/.pt/.pth files are), which qkv does not read (unpickling runs code); %s", head[1], hintTorch)
	case has("\x93NUMPY") && len(head) >= 8:
		return fmt.Sprintf("a NumPy array file (.npy, format %d.%d), which qkv does not read; %s", head[6], head[7], hintNumPy)
	case has("\x89HDF\r\n\x1a\n") || (len(head) >= 520 && bytes.HasPrefix(head[512:], []byte("\x89HDF\r\n\x1a\n"))):
		return "an HDF5 file (TensorFlow/Keras weights, such as tf_model.h5), which qkv does not read; " + hintTF
	case has("lmgg") || has("fmgg") || has("tjgg"):
		return "a model in llama.cpp's legacy GGML/GGJT format (before GGUF), which qkv does not read; " + hintGGML
	case has("version https://git-lfs.github.com/spec/"):
		return "a Git LFS pointer, not the file itself: the weights were not downloaded (run git lfs pull in the repository, or download the file)"
	case onnxModel(head) || (strings.HasSuffix(base, ".onnx") && len(head) > 0 && head[0] == 0x08):
		return "an ONNX model (a protobuf graph), which qkv does not read; " + hintONNX
	case strings.HasSuffix(base, ".msgpack"):
		return "a Flax checkpoint (msgpack), which qkv does not read; " + hintFlax
	case strings.HasSuffix(base, ".pb"):
		return "a TensorFlow SavedModel graph (protobuf), which qkv does not read; " + hintTF
	case looksHTML(head):
		return "an HTML page, not a model (a download that saved a web page — an error or a login page — instead of the file?)"
	}
	return ""
}

// zipFormat tells a zip archive's content by its first entry's name (and
// the names in the bytes read): torch.save's archive holds NAME/data.pkl,
// numpy.savez writes .npy members, a Keras 3 .keras file its config,
// metadata and model.weights.h5.
func zipFormat(head []byte) string {
	first := ""
	if len(head) >= 30 {
		n := int(binary.LittleEndian.Uint16(head[26:]))
		if 30+n <= len(head) {
			first = string(head[30 : 30+n])
		}
	}
	switch {
	case first == "data.pkl" || strings.HasSuffix(first, "/data.pkl") || bytes.Contains(head, []byte("/data.pkl")):
		return "a PyTorch checkpoint (torch.save's zip archive of pickled data), which qkv does not read (unpickling runs code); " + hintTorch
	case strings.HasSuffix(first, ".npy"):
		return "a NumPy archive (.npz), which qkv does not read; write its arrays as safetensors with safetensors.numpy.save_file(dict(numpy.load(\"FILE.npz\")), \"OUT.safetensors\")"
	case first == "metadata.json" || first == "config.json" || first == "model.weights.h5" || bytes.Contains(head, []byte("model.weights.h5")):
		return "a Keras model archive (.keras), which qkv does not read; " + hintTF
	}
	return fmt.Sprintf("a zip archive (its first entry is %q), not a safetensors or GGUF file", first)
}

// onnxModel recognises the start of a serialised ONNX ModelProto as
// exporters write it: field 1 (ir_version, a small varint), then field 2
// (producer_name), 3, 4, 5, 6, 7 (graph) or 8 (opset_import).
func onnxModel(b []byte) bool {
	if len(b) < 3 || b[0] != 0x08 || b[1] < 3 || b[1] > 20 {
		return false
	}
	switch b[2] {
	case 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42:
		return true
	}
	return false
}

func looksHTML(b []byte) bool {
	t := bytes.ToLower(bytes.TrimLeft(b[:min(len(b), 512)], " \t\r\n\ufeff"))
	return bytes.HasPrefix(t, []byte("<!doctype html")) || bytes.HasPrefix(t, []byte("<html"))
}

// foreignFile says what a file of a folder holds when its name is one of
// another framework's weight files, "" when it is not.
func foreignFile(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".bin") && (strings.HasPrefix(n, "pytorch_model") || strings.HasPrefix(n, "adapter_model")),
		strings.HasSuffix(n, ".pt"), strings.HasSuffix(n, ".pth"), strings.HasSuffix(n, ".ckpt"),
		n == "pytorch_model.bin.index.json":
		return "PyTorch"
	case strings.HasSuffix(n, ".h5"), strings.HasSuffix(n, ".keras"), n == "saved_model.pb":
		return "TensorFlow/Keras"
	case strings.HasSuffix(n, ".msgpack"):
		return "Flax"
	case strings.HasSuffix(n, ".onnx"):
		return "ONNX"
	case strings.HasSuffix(n, ".npy"), strings.HasSuffix(n, ".npz"):
		return "NumPy"
	}
	return ""
}

var foreignHints = map[string]string{"PyTorch": hintTorch, "TensorFlow/Keras": hintTF, "Flax": hintFlax, "ONNX": hintONNX, "NumPy": hintNumPy}

// noCheckpointError is the error for a folder with no safetensors or GGUF
// file: it names the other frameworks' weight files it holds, if any, and
// how to convert them.
func (c *Checkpoint) noCheckpointError() error {
	const none = "no model.safetensors, model.safetensors.index.json, *.safetensors or *.gguf in this folder"
	files, _ := source.ListAll(c.dir)
	byKind := map[string][]string{}
	var kinds []string
	for _, fi := range files {
		k := foreignFile(fi.Name)
		if k == "" {
			continue
		}
		if byKind[k] == nil {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], fi.Name)
	}
	if len(kinds) == 0 {
		return errorf(c.dir.Name(), -1, "%s", none)
	}
	// PyTorch first: transformers converts from it without from_tf/from_flax.
	pick := kinds[0]
	for _, k := range []string{"PyTorch", "TensorFlow/Keras", "Flax", "ONNX", "NumPy"} {
		if byKind[k] != nil {
			pick = k
			break
		}
	}
	names := byKind[pick]
	list := quoteJoin(names, 3)
	return errorf(c.dir.Name(), -1, "%s, only %s weights (%s), which qkv does not read; %s", none, pick, list, foreignHints[pick])
}

// quoteJoin quotes and joins up to n names, saying how many more there are.
func quoteJoin(names []string, n int) string {
	var q []string
	for i, s := range names {
		if i == n {
			q = append(q, fmt.Sprintf("and %d more", len(names)-n))
			break
		}
		q = append(q, fmt.Sprintf("%q", s))
	}
	return strings.Join(q, ", ")
}
