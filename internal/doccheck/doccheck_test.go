package doccheck

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

const (
	// readmeMax keeps the README a short overview; the reference lives in docs/.
	readmeMax = 15000
	// testCommand is the line the README gives for running every test.
	testCommand = "go test -race ./... && (cd deploy && go test ./...)"
)

// historyPhrases speak of the project's own history, which the docs never
// do: they describe what is. Each is unambiguous in these docs; "no longer"
// is left out because it describes behaviour too ("a group's messages no
// longer reply to the root" is a symptom, not a change).
var historyPhrases = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\bissue #`),
	regexp.MustCompile(`(?i)\bissue [0-9]`),
	regexp.MustCompile(`(?i)\bprevious release`),
	regexp.MustCompile(`(?i)\bfirst release`),
	regexp.MustCompile(`(?i)\bthis round\b`),
	regexp.MustCompile(`(?i)\bearlier round\b`),
}

// benignRound is blanked before historyPhrases look at a line, so that
// "this round trip" does not read as "this round".
var benignRound = regexp.MustCompile(`(?i)\bround[- ](trip|robin)`)

func TestDocs(t *testing.T) {
	root := repoRoot(t)
	files, err := docFiles(root)
	require.NoError(t, err)
	// Without docs the checks below would pass for want of input.
	require.Greater(t, len(files), 1, "no docs/*.md under %s", root)

	t.Run("links", func(t *testing.T) {
		requireNone(t, checkLinks(root, files))
	})
	t.Run("readme size", func(t *testing.T) {
		requireNone(t, checkSize(root, "README.md", readmeMax))
	})
	t.Run("history", func(t *testing.T) {
		requireNone(t, checkHistory(root, files))
	})
	t.Run("test command", func(t *testing.T) {
		requireNone(t, checkLine(root, "README.md", testCommand))
	})
	t.Run("docs linked from readme", func(t *testing.T) {
		requireNone(t, checkDocsLinked(root, files))
	})
}

func requireNone(t *testing.T, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Fatalf("%d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// docFiles lists README.md and docs/*.md, relative to root, with slashes.
func docFiles(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, "docs/"+filepath.Base(d))
	}
	sort.Strings(files[1:])
	return files, nil
}

// line is one line of a Markdown file outside code fences, numbered from 1.
type line struct {
	n    int
	text string
}

// prose returns the lines of text outside fenced code blocks (``` or ~~~,
// indented or not, closed by a run of the same character at least as long).
func prose(text string) []line {
	var (
		out      []line
		fenceCh  byte
		fenceLen int
	)
	for i, l := range strings.Split(text, "\n") {
		ch, n, rest := fenceMarker(l)
		if fenceLen == 0 {
			if n >= 3 && (ch == '~' || !strings.Contains(rest, "`")) {
				fenceCh, fenceLen = ch, n
				continue
			}
			out = append(out, line{i + 1, l})
			continue
		}
		if ch == fenceCh && n >= fenceLen && strings.TrimSpace(rest) == "" {
			fenceLen = 0
		}
	}
	return out
}

// fenceMarker returns the run of ` or ~ a line begins with after its
// indentation, and what follows the run.
func fenceMarker(l string) (ch byte, n int, rest string) {
	l = strings.TrimLeft(l, " \t")
	if l == "" || (l[0] != '`' && l[0] != '~') {
		return 0, 0, l
	}
	for n < len(l) && l[n] == l[0] {
		n++
	}
	return l[0], n, l[n:]
}

// stripCodeSpans removes code spans: a run of backticks up to the next run
// of the same length. A run without its match is literal text.
func stripCodeSpans(l string) string {
	var b strings.Builder
	for i := 0; i < len(l); {
		if l[i] != '`' {
			b.WriteByte(l[i])
			i++
			continue
		}
		n := 0
		for i+n < len(l) && l[i+n] == '`' {
			n++
		}
		end := closingRun(l[i+n:], n)
		if end < 0 {
			b.WriteString(l[i : i+n])
			i += n
			continue
		}
		i += n + end + n
	}
	return b.String()
}

// closingRun returns where in s a run of exactly n backticks begins, or -1.
func closingRun(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		m := 0
		for i+m < len(s) && s[i+m] == '`' {
			m++
		}
		if m == n {
			return i
		}
		i += m
	}
	return -1
}

var (
	headingRE  = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$`)
	closingRE  = regexp.MustCompile(`(?:^|[ \t]+)#+$`)
	inlineLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	schemeRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// anchors returns the anchors GitHub gives the headings of a Markdown file.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose(text) {
		m := headingRE.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		h := closingRE.ReplaceAllString(m[2], "")
		h = inlineLink.ReplaceAllString(h, "$1")
		h = htmlTag.ReplaceAllString(h, "")
		s := slug(h)
		n := seen[s]
		seen[s] = n + 1
		if n > 0 {
			s = fmt.Sprintf("%s-%d", s, n)
		}
		out[s] = true
	}
	return out
}

// slug is GitHub's anchor for a heading's text: lower case, punctuation
// dropped but for - and _, each space a -.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// link is a relative link in a Markdown file, outside code.
type link struct {
	line   int
	target string
}

// links returns the relative inline links of a Markdown file; links in code
// fences and code spans are text, and absolute URLs are not checked.
func links(text string) []link {
	var out []link
	for _, l := range prose(text) {
		for _, m := range linkRE.FindAllStringSubmatch(stripCodeSpans(l.text), -1) {
			if !schemeRE.MatchString(m[1]) {
				out = append(out, link{l.n, m[1]})
			}
		}
	}
	return out
}

// resolve returns the file a link in file from points at, relative to the
// root with slashes, and its fragment. A path beginning with / is from the
// root, as GitHub reads it.
func resolve(from, target string) (dest, frag string, err error) {
	p, frag, _ := strings.Cut(target, "#")
	p, _, _ = strings.Cut(p, "?")
	if p, err = url.PathUnescape(p); err != nil {
		return "", "", err
	}
	if frag, err = url.PathUnescape(frag); err != nil {
		return "", "", err
	}
	switch {
	case p == "":
		dest = from
	case strings.HasPrefix(p, "/"):
		dest = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		dest = path.Join(path.Dir(from), p)
	}
	if dest == ".." || strings.HasPrefix(dest, "../") {
		return "", "", fmt.Errorf("outside the repository")
	}
	return dest, frag, nil
}

// checkLinks reports each relative link in files (relative to root) whose
// file does not exist or whose fragment names no heading of that file.
func checkLinks(root string, files []string) []string {
	var problems []string
	cache := map[string]map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for _, l := range links(string(text)) {
			bad := func(format string, a ...any) {
				problems = append(problems, fmt.Sprintf("%s:%d: link %q: %s", f, l.line, l.target, fmt.Sprintf(format, a...)))
			}
			dest, frag, err := resolve(f, l.target)
			if err != nil {
				bad("%v", err)
				continue
			}
			full := filepath.Join(root, filepath.FromSlash(dest))
			if _, err := os.Stat(full); err != nil {
				bad("no file %s", dest)
				continue
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				bad("#%s in %s, which is not Markdown", frag, dest)
				continue
			}
			a, ok := cache[dest]
			if !ok {
				b, err := os.ReadFile(full)
				if err != nil {
					bad("%v", err)
					continue
				}
				a = anchors(string(b))
				cache[dest] = a
			}
			if !a[frag] {
				bad("no heading #%s in %s", frag, dest)
			}
		}
	}
	return problems
}

// checkSize reports the file name under root if it is over max bytes.
func checkSize(root, name string, maxBytes int64) []string {
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	if fi.Size() > maxBytes {
		return []string{fmt.Sprintf("%s: %d bytes, over the limit of %d: move reference text into docs/", name, fi.Size(), maxBytes)}
	}
	return nil
}

// checkHistory reports each line of files, code included, holding one of
// historyPhrases.
func checkHistory(root string, files []string) []string {
	var problems []string
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for i, l := range strings.Split(string(text), "\n") {
			l = benignRound.ReplaceAllString(l, "")
			for _, re := range historyPhrases {
				if m := re.FindString(l); m != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: %q speaks of the project's history; describe what is: %s", f, i+1, m, strings.TrimSpace(l)))
				}
			}
		}
	}
	return problems
}

// checkLine reports name if no line of it is want, leading and trailing
// space aside.
func checkLine(root, name, want string) []string {
	text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	for _, l := range strings.Split(string(text), "\n") {
		if strings.TrimSpace(l) == want {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: no line %q", name, want)}
}

// checkDocsLinked reports each docs/*.md among files that README.md does
// not link to (a link in code does not count).
func checkDocsLinked(root string, files []string) []string {
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return []string{fmt.Sprintf("README.md: %v", err)}
	}
	linked := map[string]bool{}
	for _, l := range links(string(text)) {
		if dest, _, err := resolve("README.md", l.target); err == nil {
			linked[dest] = true
		}
	}
	var problems []string
	for _, f := range files {
		if strings.HasPrefix(f, "docs/") && !linked[f] {
			problems = append(problems, fmt.Sprintf("%s: not linked from README.md", f))
		}
	}
	return problems
}

// writeTree writes files (slash paths to contents) under a new temporary
// directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	return root
}

func TestCheckLinks(t *testing.T) {
	readme := strings.Join([]string{
		"# Title", // 1
		"[good](docs/a.md) and [anchor](docs/a.md#setup)", // 2
		"[broken](docs/missing.md)",                       // 3
		"[no heading](docs/a.md#nowhere)",                 // 4
		"[second setup](docs/a.md#setup-1)",               // 5
		"[third setup](docs/a.md#setup-2)",                // 6
		"```bash",                                         // 7
		"[in a fence](docs/missing.md)",                   // 8
		"```",                                             // 9
		"`[in a span](docs/missing.md)` and [web](https://example.com/x.md)", // 10
		"[here](#title) [not here](#other)",                                  // 11
		"[up](../outside.md)",                                                // 12
		"[code](main.go) [anchor in code](main.go#L1)",                       // 13
		"``[a ` span](docs/missing.md)``",                                    // 14
		"   ~~~",                                                             // 15
		"   [indented fence](docs/missing.md)",                               // 16
		"   ```",                                                             // 17
		"   ~~~",                                                             // 18
		"[slash](/docs/a.md#rate-limits-429--99991400)",                      // 19
	}, "\n")
	a := strings.Join([]string{
		"# A",
		"## Setup",
		"```sh",
		"# Setup",
		"```",
		"## Setup",
		"## Rate limits: 429 / 99991400",
		"[back](../README.md#title)",
	}, "\n")
	root := writeTree(t, map[string]string{"README.md": readme, "docs/a.md": a, "main.go": "package main\n"})

	got := checkLinks(root, []string{"README.md", "docs/a.md"})
	require.Equal(t, []string{
		`README.md:3: link "docs/missing.md": no file docs/missing.md`,
		`README.md:4: link "docs/a.md#nowhere": no heading #nowhere in docs/a.md`,
		`README.md:6: link "docs/a.md#setup-2": no heading #setup-2 in docs/a.md`,
		`README.md:11: link "#other": no heading #other in README.md`,
		`README.md:12: link "../outside.md": outside the repository`,
		`README.md:13: link "main.go#L1": #L1 in main.go, which is not Markdown`,
	}, got)
}

func TestAnchors(t *testing.T) {
	text := strings.Join([]string{
		"# Running several replicas",
		"## `chain_ttl` and the token's life ##",
		"### [Linked](x.md) <sub>heading</sub>",
		"## Dedupe",
		"## Dedupe",
		"## Dedupe",
		"~~~~",
		"```",
		"# not a heading",
		"```",
		"~~~~",
		"#not a heading either",
		"## Größe & Ü",
	}, "\n")
	got := anchors(text)
	want := map[string]bool{
		"running-several-replicas":      true,
		"chain_ttl-and-the-tokens-life": true,
		"linked-heading":                true,
		"dedupe":                        true,
		"dedupe-1":                      true,
		"dedupe-2":                      true,
		"größe--ü":                      true,
	}
	require.Equal(t, want, got)
}

func TestCheckSize(t *testing.T) {
	root := writeTree(t, map[string]string{
		"README.md": strings.Repeat("x", readmeMax+1),
		"ok.md":     strings.Repeat("x", readmeMax),
	})
	require.Equal(t, []string{"README.md: 15001 bytes, over the limit of 15000: move reference text into docs/"},
		checkSize(root, "README.md", readmeMax))
	require.Empty(t, checkSize(root, "ok.md", readmeMax))
}

func TestCheckHistory(t *testing.T) {
	root := writeTree(t, map[string]string{
		"README.md": "Fine text.\nThe goals of Issue 8 are met.\n",
		"docs/a.md": strings.Join([]string{
			"One round trip per commit; this round trip is cheap, round-robin too.",
			"Unlike the previous release, it retries.",
			"```",
			"see issue #12",
			"```",
			"In this round the cache was added.",
			"A chat the bot is no longer in answers 422.",
			"Upgrading from the first release needs nothing.",
		}, "\n"),
	})
	got := checkHistory(root, []string{"README.md", "docs/a.md"})
	require.Equal(t, []string{
		`README.md:2: "Issue 8" speaks of the project's history; describe what is: The goals of Issue 8 are met.`,
		`docs/a.md:2: "previous release" speaks of the project's history; describe what is: Unlike the previous release, it retries.`,
		`docs/a.md:4: "issue #" speaks of the project's history; describe what is: see issue #12`,
		`docs/a.md:6: "this round" speaks of the project's history; describe what is: In this round the cache was added.`,
		`docs/a.md:8: "first release" speaks of the project's history; describe what is: Upgrading from the first release needs nothing.`,
	}, got)
}

func TestCheckLine(t *testing.T) {
	root := writeTree(t, map[string]string{
		"README.md": "```bash\n  " + testCommand + "\n```\n",
		"other.md":  "go test -race ./...\n",
	})
	require.Empty(t, checkLine(root, "README.md", testCommand))
	require.Equal(t, []string{`other.md: no line "go test -race ./... && (cd deploy && go test ./...)"`},
		checkLine(root, "other.md", testCommand))
}

func TestCheckDocsLinked(t *testing.T) {
	root := writeTree(t, map[string]string{
		"README.md": "[A](docs/a.md#x), [B](./docs/../docs/b.md), `[C](docs/c.md)`\n```\n[D](docs/d.md)\n```\n",
		"docs/a.md": "# x\n",
		"docs/b.md": "",
		"docs/c.md": "",
		"docs/d.md": "",
	})
	files, err := docFiles(root)
	require.NoError(t, err)
	require.Equal(t, []string{"README.md", "docs/a.md", "docs/b.md", "docs/c.md", "docs/d.md"}, files)
	require.Equal(t, []string{
		"docs/c.md: not linked from README.md",
		"docs/d.md: not linked from README.md",
	}, checkDocsLinked(root, files))
}
