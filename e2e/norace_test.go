//go:build !race

package e2e

// raceDetector is whether the tests run with -race (race_test.go).
const raceDetector = false
