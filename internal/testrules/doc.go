// Package testrules holds a test that enforces, over the module's own
// tests, a rule of the testing package that the linters miss: FailNow
// (require's assertions, t.Fatal) must run on the test's goroutine.
// testifylint's go-require finds `go func` bodies but not those given to
// sync.WaitGroup.Go.
package testrules
