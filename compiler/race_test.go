//go:build race

package compiler

// raceEnabled: the race detector slows the compiler ten-fold, which
// TestHugeInputs's guard would take for the old quadratic behaviour.
const raceEnabled = true
