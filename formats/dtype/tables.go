package dtype

import "sync"

// Small lookup tables shared by the block kernels. A table load replaces an
// integer-to-float conversion (and the masking before it) in the hot loops;
// every entry is an exact small integer, so results are unchanged.
var (
	int8Table  [256]float32 // float32(int8(c))
	uint8Table [256]float32 // float32(c)
	nibLo      [256]float32 // float32(c & 15)
	nibHi      [256]float32 // float32(c >> 4)
	nibLoM8    [256]float32 // float32(c&15 - 8)
	nibHiM8    [256]float32 // float32(c>>4 - 8)
	uint8M16   [256]float32 // float32(c - 16)
	uint8M4    [256]float32 // float32(c - 4)
	uint8M32   [256]float32 // float32(c - 32)
	// spreadBits[c] has byte i equal to bit i of c: it turns one byte of
	// packed high bits into eight per-element bits for SWAR on uint64s.
	spreadBits [256]uint64
)

// Lookup tables are built on first use, not at start-up: a command that
// decodes nothing (ls, meta, version) does not pay for them. Decode and
// DecodeBigEndian (through checkIn) call loadTables before any kernel runs;
// kernels and the helpers they call may then read the tables freely.
var tablesOnce sync.Once

// loadTables builds every lookup table of the package, once.
func loadTables() {
	tablesOnce.Do(func() {
		halfTable = buildHalfTable() // first: the fp8 tables read it
		buildSmallTables()
		buildScalarTables()
		buildMXFP4Tables()
		buildTernaryTables()
		initIQTables()
	})
}

// buildSmallTables fills the tables above.
func buildSmallTables() {
	for c := range 256 {
		int8Table[c] = float32(int8(uint8(c)))
		uint8Table[c] = float32(c)
		nibLo[c] = float32(c & 15)
		nibHi[c] = float32(c >> 4)
		nibLoM8[c] = float32(c&15 - 8)
		nibHiM8[c] = float32(c>>4 - 8)
		uint8M16[c] = float32(c - 16)
		uint8M4[c] = float32(c - 4)
		uint8M32[c] = float32(c - 32)
		for i := range 8 {
			spreadBits[c] |= uint64(c>>i&1) << (8 * i)
		}
	}
}

// le64 reads eight bytes as a little-endian uint64 (one load on amd64/arm64).
func le64(b *[8]byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
