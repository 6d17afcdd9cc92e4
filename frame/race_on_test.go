//go:build race

package frame

// raceEnabled skips allocation counts: under -race, sync.Pool drops items at
// random and the zstd decoder takes its Huffman and FSE tables from pools,
// so it allocates now and then. The zero-allocation gates hold in normal
// builds.
const raceEnabled = true
