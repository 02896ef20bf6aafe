//go:build race

package wire

// poisonArena makes Message.Reset overwrite the old arena in -race builds, so
// code that keeps a view into a decoded Message fails loudly in tests.
const poisonArena = true
