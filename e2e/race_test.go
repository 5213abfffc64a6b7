//go:build race

package e2e

// raceDetector is whether the tests run with -race, which makes every
// goroutine several times slower and their timing less even.
const raceDetector = true
