package testrules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// moduleRoot is the module's directory, two levels above this package.
const moduleRoot = "../.."

// TestNoFailNowOffTheTestGoroutine fails for a require assertion, t.Fatal,
// t.FailNow or t.Skip inside a function literal run by a go statement or
// given to a WaitGroup's (or errgroup's) Go: there it stops only that
// goroutine, and the test goes on as if the check had passed.
func TestNoFailNowOffTheTestGoroutine(t *testing.T) {
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			for _, body := range goroutineBodies(n) {
				found = append(found, failNows(fset, body)...)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, found, "use assert, or send the error to the test's goroutine")
}

// goroutineBodies are the function literals n starts on a goroutine of
// their own.
func goroutineBodies(n ast.Node) []*ast.FuncLit {
	switch x := n.(type) {
	case *ast.GoStmt:
		if fl, ok := x.Call.Fun.(*ast.FuncLit); ok {
			return []*ast.FuncLit{fl}
		}
	case *ast.CallExpr:
		s, ok := x.Fun.(*ast.SelectorExpr)
		if !ok || s.Sel.Name != "Go" || len(x.Args) != 1 {
			return nil
		}
		if fl, ok := x.Args[0].(*ast.FuncLit); ok {
			return []*ast.FuncLit{fl}
		}
	}
	return nil
}

// failNows are the positions of the calls in fl that call FailNow.
func failNows(fset *token.FileSet, fl *ast.FuncLit) []string {
	var out []string
	ast.Inspect(fl.Body, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		s, ok := c.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		id, ok := s.X.(*ast.Ident)
		if !ok {
			return true
		}
		switch {
		case id.Name == "require",
			(id.Name == "t" || id.Name == "b") && (strings.HasPrefix(s.Sel.Name, "Fatal") || s.Sel.Name == "FailNow" || strings.HasPrefix(s.Sel.Name, "Skip")):
			out = append(out, fset.Position(c.Pos()).String()+": "+id.Name+"."+s.Sel.Name)
		}
		return true
	})
	return out
}
