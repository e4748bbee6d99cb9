package main

// The hostile corpus's files of other formats (issue 17): each a small file
// with the first bytes its format starts with, built here from the
// formats' published layouts, and the one-line error that says what it is
// and how to convert it.

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"log"
)

// The conversion hints qkv gives, per family.
const (
	convTorch = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True) — " +
		"or to GGUF with llama.cpp's convert_hf_to_gguf.py DIR"
	convTF    = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR, from_tf=True).save_pretrained(OUT, safe_serialization=True)"
	convFlax  = "convert it to safetensors with transformers — AutoModel.from_pretrained(DIR, from_flax=True).save_pretrained(OUT, safe_serialization=True)"
	convONNX  = "export the model's weights as safetensors from the framework it came from (transformers: save_pretrained(OUT, safe_serialization=True)), or write the graph's initializers with onnx.numpy_helper.to_array and safetensors.numpy.save_file"
	convNumPy = "write the arrays as safetensors with safetensors.numpy.save_file({NAME: array, …}, \"OUT.safetensors\")"
	noWeights = "no model.safetensors, model.safetensors.index.json, *.safetensors or *.gguf in this folder"
)

// zipOf is a zip archive of the named members, in order, stored.
func zipOf(members ...[2]string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, m := range members {
		f, err := w.CreateHeader(&zip.FileHeader{Name: m[0], Method: zip.Store})
		if err != nil {
			log.Fatal(err)
		}
		f.Write([]byte(m[1]))
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

// npy is a NumPy .npy file of 4 float32 zeros (format 1.0: magic, version,
// a little-endian u16 header length, a Python dict literal padded to 64).
func npy() []byte {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, 16)...)
}

func (h *hostileSet) foreignCases() {
	one := func(name, class string, b []byte, msg string) {
		h.file(name, b)
		h.fail(name, class, msg)
	}
	// torch.save's legacy format: pickle protocol 2, then the magic number
	// 0x1950a86a20f9469cfc6c as a LONG1 of 10 bytes, then more pickle.
	legacy := []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e}
	one("pytorch-legacy.bin", "PyTorch checkpoint in torch.save's legacy pickle format", legacy,
		"a PyTorch checkpoint in torch.save's legacy pickle format, which qkv does not read (unpickling runs code); "+convTorch)
	// A pickle of protocol 4: PROTO 4, FRAME, an empty dict, STOP.
	one("pickle-protocol-4.pt", "Python pickle (protocol 4)", []byte{0x80, 0x04, 0x95, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0x94, 0x2e},
		"a Python pickle (protocol 4, as PyTorch's .bin/.pt/.pth files are), which qkv does not read (unpickling runs code); "+convTorch)
	one("pytorch-zip.pt", "PyTorch checkpoint in torch.save's zip format",
		zipOf([2]string{"archive/data.pkl", "\x80\x02}q\x00."}, [2]string{"archive/byteorder", "little"}, [2]string{"archive/data/0", "\x00\x00\x00\x00"}, [2]string{"archive/version", "3\n"}),
		"a PyTorch checkpoint (torch.save's zip archive of pickled data), which qkv does not read (unpickling runs code); "+convTorch)
	// ONNX ModelProto: ir_version 8 (field 1), producer_name "pytorch"
	// (field 2), producer_version "2.1" (field 3).
	onnx := append([]byte{0x08, 0x08, 0x12, 0x07}, "pytorch"...)
	onnx = append(append(onnx, 0x1a, 0x03), "2.1"...)
	one("model.onnx", "ONNX model", onnx, "an ONNX model (a protobuf graph), which qkv does not read; "+convONNX)
	one("weights.npy", "NumPy .npy array", npy(), "a NumPy array file (.npy, format 1.0), which qkv does not read; "+convNumPy)
	one("weights.npz", "NumPy .npz archive", zipOf([2]string{"arr_0.npy", string(npy())}),
		`a NumPy archive (.npz), which qkv does not read; write its arrays as safetensors with safetensors.numpy.save_file(dict(numpy.load("FILE.npz")), "OUT.safetensors")`)
	one("tf_model.h5", "HDF5 (TensorFlow/Keras weights)", append([]byte("\x89HDF\r\n\x1a\n"), make([]byte, 56)...),
		"an HDF5 file (TensorFlow/Keras weights, such as tf_model.h5), which qkv does not read; "+convTF)
	one("model.keras", "Keras 3 model archive", zipOf([2]string{"metadata.json", "{}"}, [2]string{"config.json", "{}"}, [2]string{"model.weights.h5", "\x89HDF\r\n\x1a\n"}),
		"a Keras model archive (.keras), which qkv does not read; "+convTF)
	one("ggjt-legacy.bin", "llama.cpp's legacy GGJT format", append([]byte("tjgg"), 3, 0, 0, 0),
		"a model in llama.cpp's legacy GGML/GGJT format (before GGUF), which qkv does not read; convert it to GGUF with llama.cpp's convert_llama_ggml_to_gguf.py")
	one("lfs-pointer/model.safetensors", "Git LFS pointer in place of the weights",
		[]byte("version https://git-lfs.github.com/spec/v1\noid sha256:"+string(bytes.Repeat([]byte("ab"), 32))+"\nsize 5368709120\n"),
		"a Git LFS pointer, not the file itself: the weights were not downloaded (run git lfs pull in the repository, or download the file)")
	h.cases["lfs-pointer"] = HostileCase{Class: "folder whose model.safetensors is a Git LFS pointer", Exit: 3,
		Error: h.rel("lfs-pointer/model.safetensors") + ": a Git LFS pointer, not the file itself: the weights were not downloaded (run git lfs pull in the repository, or download the file)"}
	one("html-page.safetensors", "HTML page saved in place of a model", []byte("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n"),
		"an HTML page, not a model (a download that saved a web page — an error or a login page — instead of the file?)")

	// Folders with another framework's weights only.
	cfg := []byte(`{"model_type": "llama", "hidden_size": 16}`)
	h.file("only-pytorch/config.json", cfg)
	h.file("only-pytorch/pytorch_model.bin", legacy)
	h.fail("only-pytorch", "Hugging Face folder with pytorch_model.bin only",
		noWeights+`, only PyTorch weights ("pytorch_model.bin"), which qkv does not read; `+convTorch)
	h.file("only-tensorflow/config.json", cfg)
	h.file("only-tensorflow/tf_model.h5", append([]byte("\x89HDF\r\n\x1a\n"), make([]byte, 56)...))
	h.fail("only-tensorflow", "Hugging Face folder with tf_model.h5 only",
		noWeights+`, only TensorFlow/Keras weights ("tf_model.h5"), which qkv does not read; `+convTF)
	h.file("only-flax/config.json", cfg)
	h.file("only-flax/flax_model.msgpack", []byte{0x81, 0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0x80})
	h.fail("only-flax", "Hugging Face folder with flax_model.msgpack only",
		noWeights+`, only Flax weights ("flax_model.msgpack"), which qkv does not read; `+convFlax)
	h.file("only-pt-shards/consolidated.00.pth", legacy)
	h.file("only-pt-shards/consolidated.01.pth", legacy)
	h.fail("only-pt-shards", "folder of PyTorch .pth shards (Meta's original release layout)",
		noWeights+`, only PyTorch weights ("consolidated.00.pth", "consolidated.01.pth"), which qkv does not read; `+convTorch)
}
