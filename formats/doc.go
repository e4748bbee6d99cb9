// Package formats opens transformer checkpoints — safetensors files, Hugging
// Face model folders and sharded indexes, GGUF files and split GGUF sets — by
// memory-mapping them read-only and parsing only their headers. It lists their
// tensors, decodes any tensor to float32 through the dtype leaf, and finds
// every layer's attention projections W_Q, W_K, W_V and W_O in one convention
// (see Layer).
//
// Nothing here knows about terminals or output formats.
package formats
