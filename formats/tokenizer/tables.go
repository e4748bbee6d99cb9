package tokenizer

import "sync"

// The package's tables — Latin-1 character classes, canonical
// compositions, GPT-2's byte-level alphabet, the pre-tokenizers by name and
// the regular expressions recognised in tokenizer.json — are built on first
// use, not at start-up: a command that tokenizes nothing does not pay for
// them. Every exported constructor, Encode, Decode and PreTokenizers call
// loadTables first.
var tablesOnce sync.Once

func loadTables() {
	tablesOnce.Do(func() {
		buildLatin1Class()
		buildComposeMap()
		buildByteLevel()
		buildPreSpecs()
		buildKnownRegexes()
	})
}
