// Package source serves the bytes of checkpoint files from wherever they
// live — a local file, the local Hugging Face cache, the Hugging Face Hub (or
// a mirror behind HF_ENDPOINT) or any HTTPS server — behind one interface, so
// that the format parsers see a local file and a remote one alike.
//
// A Client resolves an input (a path, hf://ORG/NAME[@REV][/PATH], a bare
// ORG/NAME[@REV] that is not a local path, or an https:// URL) to a Target:
// a Dir (a folder of files, local or remote) and the file named in it. A Dir
// opens a Source per file: its size, a name for messages and random access to
// byte ranges. Local files are memory-mapped and Bytes is zero-copy; remote
// files are read by HTTP range requests, each range fetched once and kept in
// a read-through cache on disk (see Options.CacheDir).
//
// Everything a server sends is untrusted like a file's bytes: sizes, counts,
// lengths and headers are checked before they are used, and nothing is
// allocated from a size the server claims without a cap. Faults (timeouts,
// 429 with Retry-After, 5xx, resets, short bodies, a wrong Content-Range)
// are retried with backoff; a file whose ETag or size changes during a run is
// an error; no corrupt cache entry is ever served.
//
// Verify and WriteManifest compute the SHA-256 of every file of a Dir and
// compare them with the Hub's LFS object ids, the Hugging Face cache's blob
// names, or a manifest (schema "qkv.manifest/v1").
package source
