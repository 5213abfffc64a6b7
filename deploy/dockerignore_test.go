package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

// The Dockerfile's build works on the context .dockerignore leaves: the
// files left, matched with Docker's own pattern matcher, are copied apart
// and built as the Dockerfile builds them. Tests, docs and the deploy
// module stay out of the context.
func TestDockerignore(t *testing.T) {
	f, err := os.Open("../.dockerignore")
	require.NoError(t, err)
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)

	ctx := t.TempDir()
	var kept []string
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("..", path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		ignored, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if ignored {
			if d.IsDir() && !hasException(patterns) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		kept = append(kept, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(ctx, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	require.NoError(t, err)
	require.Contains(t, kept, "go.mod")
	require.Contains(t, kept, "go.sum")
	for _, k := range kept {
		require.False(t, strings.HasSuffix(k, "_test.go"), "%s in the build context", k)
		require.False(t, strings.HasPrefix(k, "deploy/") || strings.HasPrefix(k, ".git/"), "%s in the build context", k)
		require.False(t, strings.HasSuffix(k, ".md"), "%s in the build context", k)
	}

	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "alertmanager-feishu")
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Dir = ctx
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build in the context .dockerignore leaves:\n%s", out)
	out, err = exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// hasException says whether a pattern re-includes something (!pattern),
// in which case an ignored folder must still be walked.
func hasException(patterns []string) bool {
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			return true
		}
	}
	return false
}
