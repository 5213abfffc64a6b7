package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in routing.yaml: the key at fault, as a path from
// the top of the file (receivers[2].chat_id), and the line it is on.
type Error struct {
	// Line is the key's line, or that of the nearest enclosing key when
	// the key is absent; 0 when not even that is in the file.
	Line int
	// Key is the key's path; "" for the file as a whole.
	Key string
	Msg string

	err error // what it comes from, if anything: a secret file's read
}

// Unwrap is the error the problem comes from, such as fs.ErrNotExist.
func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file, in the order of their lines,
// those without a line last.
type Errors []*Error

// Error is one problem a line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each problem.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Line, es[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
}

// lineMap holds the line of every key path written in a file.
type lineMap map[string]int

// line is the line of key, or of the nearest key enclosing it; 0 when
// neither is in the file.
func (l lineMap) line(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		key = parentKey(key)
	}
	return 0
}

// problem is the problem at key, on key's line.
func (l lineMap) problem(key, format string, args ...any) *Error {
	return &Error{Line: l.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// parentKey is the path that encloses key: a.b[2].c → a.b[2] → a.b → a.
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// childKey is name under parent.
func childKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// itemKey is the i-th item of the list at parent.
func itemKey(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// within reports whether key is at or under parent.
func within(key, parent string) bool {
	if parent == "" || key == parent {
		return true
	}
	return strings.HasPrefix(key, parent) && (key[len(parent)] == '.' || key[len(parent)] == '[')
}

// place is where a part of the configuration was written, for problems
// found after Parse: a secret file that is read at start and reload.
type place struct {
	key   string
	lines lineMap
}

func (p place) problem(key, format string, args ...any) *Error {
	return p.lines.problem(childKey(p.key, key), format, args...)
}

// problems collects what validation finds, on the lines of the keys.
type problems struct {
	lines lineMap
	errs  Errors
}

// at reports a problem of key.
func (p *problems) at(key, format string, args ...any) {
	p.errs = append(p.errs, p.lines.problem(key, format, args...))
}

// suggest is the one of candidates that name was most likely meant to be,
// "" when none is close: the same but for case and separators, a few
// letters typed wrong, left out, added or swapped, or else the shortest
// that name begins or ends in words (chat for chat_id).
func suggest(name string, candidates []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	limit := 1
	switch n := len(name); {
	case n > 10:
		limit = 3
	case n > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if norm(c) == norm(name) {
			return c
		}
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	tie := false
	for _, c := range candidates {
		if !strings.HasPrefix(c, name+"_") && !strings.HasSuffix(c, "_"+name) {
			continue
		}
		switch {
		case best == "" || len(c) < len(best):
			best, tie = c, false
		case len(c) == len(best):
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// fewest letters inserted, deleted, replaced or swapped with a neighbour
// that turn one into the other.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance of x[:i] and y[:j].
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// didYouMean is "; did you mean X?" for the closest of candidates, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// didYouMeanName is didYouMean for a name, quoted as names are.
func didYouMeanName(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}
