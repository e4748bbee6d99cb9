// Package formats opens transformer checkpoints — safetensors files, Hugging
// Face model folders and sharded indexes, GGUF files and split GGUF sets —
// wherever they live, and parses only their headers. It lists their
// tensors, decodes any tensor to float32 through the dtype leaf, and finds
// every layer's attention projections W_Q, W_K, W_V and W_O in one convention
// (see Layer).
//
// Inputs are resolved by formats/source: a local path (mapped read-only),
// hf://ORG/NAME[@REV][/PATH] or a bare ORG/NAME[@REV] that is not a local
// path (the Hugging Face cache first, then the Hub or HF_ENDPOINT), or an
// https:// URL of one file. Remote files are read by HTTP range requests:
// a safetensors header in one read (two when it is longer than 100 KB), a
// GGUF header in a growing window, every shard's header in parallel, and a
// tensor's bytes only when it is decoded. Options.Source and
// Options.Context choose the client and bound the reads; Checkpoint.IO
// counts them.
//
// Files of other formats (PyTorch pickles, ONNX, NumPy, HDF5, …) are
// recognised by their bytes and refused with the way to convert them.
// Every error about the input is an *Error (a command's exit status 3).
//
// Nothing here knows about terminals or output formats.
package formats
