//go:build !race

package wire

// poisonArena is off outside -race builds: Reset leaves the arena as it is.
const poisonArena = false
