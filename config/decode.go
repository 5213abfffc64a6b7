package config

import (
	"errors"
	"fmt"
	neturl "net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/alertmanager/pkg/labels"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The decoding of routing.yaml is in two steps. The checker walks the YAML
// tree against the types it is decoded into, the way yaml.v3 will: it
// records the line of every key, reports each key that is unknown where it
// is, and each value that would not decode (with what was wanted, not a Go
// type), and removes them from the tree. Then the tree, clean, is decoded
// into a Config as usual, UnmarshalYAML setting the defaults of what was
// left out or removed, and validated. So that every problem is found in one
// run, and a value that could not be decoded does not hide the rest.

// obsoleteUnmarshaler is yaml.v3's name for the callback form of
// UnmarshalYAML that Config, Actions and prometheus/common use.
type obsoleteUnmarshaler interface {
	UnmarshalYAML(unmarshal func(any) error) error
}

var (
	configType     = reflect.TypeFor[Config]()
	actionsType    = reflect.TypeFor[Actions]()
	routeType      = reflect.TypeFor[Route]()
	nodeType       = reflect.TypeFor[yaml.Node]()
	durationType   = reflect.TypeFor[model.Duration]()
	secretType     = reflect.TypeFor[commoncfg.Secret]()
	urlType        = reflect.TypeFor[commoncfg.URL]()
	tlsVersionType = reflect.TypeFor[commoncfg.TLSVersion]()
)

// maxVisits bounds the walk of a tree whose aliases expand to more nodes
// than any configuration has.
const maxVisits = 1 << 20

type checker struct {
	lines  lineMap
	errs   Errors
	pruned []string // the keys removed from the tree
	visits int
	active map[*yaml.Node]bool // aliases being walked, to refuse a cycle
}

func newChecker() *checker {
	return &checker{lines: lineMap{}, active: map[*yaml.Node]bool{}}
}

// problem reports a problem of the value n at key, on key's line when key
// is written, else on n's.
func (k *checker) problem(key string, n *yaml.Node, format string, args ...any) {
	line := k.lines[key]
	if line == 0 {
		line = n.Line
	}
	k.problemAt(line, key, format, args...)
}

func (k *checker) problemAt(line int, key, format string, args ...any) {
	k.errs = append(k.errs, &Error{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// check walks n, the value at key, against t. It reports false when n
// itself cannot be decoded into t, for the caller to remove; problems
// deeper down are removed where they are.
func (k *checker) check(n *yaml.Node, t reflect.Type, key string) bool {
	if k.visits++; k.visits > maxVisits {
		if k.visits == maxVisits+1 {
			k.problem(key, n, "the file's aliases expand to too much")
		}
		return false
	}
	if n.Kind == yaml.AliasNode {
		if k.active[n] || n.Alias == nil {
			k.problem(key, n, "the alias refers to itself")
			return false
		}
		k.active[n] = true
		defer delete(k.active, n)
		return k.check(n.Alias, t, key)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) || t == nodeType || t.Kind() == reflect.Interface {
		return true
	}
	switch {
	case t == urlType:
		return k.leaf(n, t, key)
	case t.Kind() == reflect.Struct:
		if !k.mapping(n, t, key) {
			return false
		}
		return k.own(n, t, key)
	case t.Kind() == reflect.Slice:
		return k.sequence(n, t, key)
	case t.Kind() == reflect.Map:
		return k.keyed(n, t, key)
	}
	return k.leaf(n, t, key)
}

// own decodes a struct of another package on its own: its UnmarshalYAML
// may validate (prometheus/common's HTTP client settings do).
func (k *checker) own(n *yaml.Node, t reflect.Type, key string) bool {
	if t == configType || t == actionsType {
		return true // their UnmarshalYAML only sets defaults
	}
	pt := reflect.PointerTo(t)
	if !pt.Implements(reflect.TypeFor[yaml.Unmarshaler]()) && !pt.Implements(reflect.TypeFor[obsoleteUnmarshaler]()) {
		return true
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		k.problem(key, n, "%s", decodeMessage(err))
		return false
	}
	return true
}

// mapping checks the keys of a struct; a key that is unknown, given twice,
// or whose value does not decode is removed.
func (k *checker) mapping(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.MappingNode {
		k.problem(key, n, "want a mapping of keys, not %s", describe(n, t))
		return false
	}
	info := fieldsOf(t)
	seen := map[string]int{}
	var merges []*yaml.Node
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			merges = append(merges, kn, vn)
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			k.problem(key, kn, "a key must be a name, not %s", describe(kn, nil))
			continue
		}
		name := kn.Value
		path := childKey(key, name)
		if first, ok := seen[name]; ok {
			k.problemAt(kn.Line, path, "given twice, first on line %d", first)
			continue
		}
		seen[name] = kn.Line
		k.lines[path] = kn.Line
		ft, ok := info.fields[name]
		if !ok && info.inlineMap != nil {
			ft, ok = info.inlineMap, true
		}
		if !ok {
			k.problem(path, kn, "%s", unknownKey(t, name, vn, info.names))
			k.pruned = append(k.pruned, path)
			continue
		}
		if !k.check(vn, ft, path) {
			k.pruned = append(k.pruned, path)
			continue
		}
		kept = append(kept, kn, vn)
	}
	// Merged keys (<<: *anchor) come after the keys written here, which
	// override them, and on their own lines.
	for i := 0; i < len(merges); i += 2 {
		if k.merge(merges[i].Line, merges[i+1], t, key) {
			kept = append(kept, merges[i], merges[i+1])
		}
	}
	n.Content = kept
	return true
}

// merge checks what <<: (on line) brings in: a mapping, or a list of them.
func (k *checker) merge(line int, v *yaml.Node, t reflect.Type, key string) bool {
	m := v
	if m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
	}
	if m.Kind == yaml.SequenceNode {
		for _, item := range m.Content {
			if !k.merge(line, item, t, key) {
				return false
			}
		}
		return true
	}
	if m.Kind != yaml.MappingNode {
		k.problemAt(line, key, "<< merges a mapping, not %s", describe(v, nil))
		return false
	}
	return k.check(v, t, key)
}

// sequence checks a list's items. An item that cannot be decoded is
// replaced by an empty one, not removed, so that the items after it keep
// their index in the keys of later problems.
func (k *checker) sequence(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.SequenceNode {
		k.problem(key, n, "want a list, not %s", describe(n, t))
		return false
	}
	et := t.Elem()
	for et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	for i, item := range n.Content {
		path := itemKey(key, i)
		k.lines[path] = item.Line
		var ok bool
		if isNull(item) && et.Kind() == reflect.Struct {
			k.problem(path, item, "empty entry")
		} else {
			ok = k.check(item, t.Elem(), path)
		}
		if !ok {
			k.pruned = append(k.pruned, path)
			n.Content[i] = emptyNode(et, item.Line)
		}
	}
	return true
}

// keyed checks the values of a map.
func (k *checker) keyed(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.MappingNode {
		k.problem(key, n, "want a mapping, not %s", describe(n, t))
		return false
	}
	seen := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		path := childKey(key, kn.Value)
		if first, ok := seen[kn.Value]; ok && kn.Kind == yaml.ScalarNode {
			k.problemAt(kn.Line, path, "given twice, first on line %d", first)
			continue
		}
		seen[kn.Value] = kn.Line
		k.lines[path] = kn.Line
		if t.Key().Kind() == reflect.String && kn.Kind != yaml.ScalarNode {
			k.problem(key, kn, "a key must be a name, not %s", describe(kn, nil))
			continue
		}
		if !k.check(vn, t.Elem(), path) {
			k.pruned = append(k.pruned, path)
			continue
		}
		kept = append(kept, kn, vn)
	}
	n.Content = kept
	return true
}

// leaf decodes a single value on its own, as the whole decode would.
func (k *checker) leaf(n *yaml.Node, t reflect.Type, key string) bool {
	var err error
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		err = errors.New("not a scalar")
	} else {
		err = n.Decode(reflect.New(t).Interface())
	}
	if err == nil {
		return true
	}
	var urlErr *neturl.Error
	if errors.As(err, &urlErr) {
		// The URL may hold a password: it is not repeated.
		k.problem(key, n, "want a URL: %v", urlErr.Err)
		return false
	}
	k.problem(key, n, "want %s, not %s", want(t), describe(n, t))
	return false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// emptyNode stands in for a list item that could not be decoded.
func emptyNode(t reflect.Type, line int) *yaml.Node {
	if t.Kind() == reflect.Struct && t != urlType {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line}
}

// want says what a value of t is written as.
func want(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration like 30s, 10m or 24h"
	case urlType:
		return "a URL"
	case tlsVersionType:
		return "one of TLS10, TLS11, TLS12 or TLS13"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, not negative"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "another kind of value"
}

// describe says what n is, for "want …, not …". A secret's value is not
// repeated.
func describe(n *yaml.Node, t reflect.Type) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if t == secretType || t == urlType {
		return "this value"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	return strconv.Quote(v)
}

// unknownKey says why name is not a key of t, and what was likely meant.
func unknownKey(t reflect.Type, name string, v *yaml.Node, names []string) string {
	if t == routeType {
		switch name {
		case "match", "match_re":
			return matchHint(name, v)
		case "group_by", "group_wait", "group_interval", "repeat_interval", "mute_time_intervals", "active_time_intervals":
			return "unknown key: " + name + " belongs on Alertmanager's route; this service routes the groups Alertmanager sends it"
		}
	}
	if s := didYouMean(name, names); s != "" {
		return "unknown key" + s
	}
	// A key indented under the wrong parent is valid elsewhere.
	if places := keyPlaces()[name]; len(places) > 0 && len(places) <= 2 {
		where := make([]string, len(places))
		for i, p := range places {
			where[i] = "under " + p
			if p == "" {
				where[i] = "at the top level"
			}
		}
		return "unknown key here; " + name + " belongs " + strings.Join(where, " or ")
	}
	if len(names) <= 8 {
		return "unknown key; the keys here are " + strings.Join(names, ", ")
	}
	return "unknown key"
}

// matchHint points from Alertmanager's deprecated match and match_re to
// matchers, with the matchers that say the same when they can be told.
func matchHint(name string, v *yaml.Node) string {
	typ := labels.MatchEqual
	if name == "match_re" {
		typ = labels.MatchRegexp
	}
	msg := name + " is Alertmanager's deprecated form and is not supported here; write matchers"
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
		return msg + `, e.g. matchers: ['team="infra"']`
	}
	var ms []string
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn, vn := v.Content[i], v.Content[i+1]
		if kn.Kind != yaml.ScalarNode || vn.Kind != yaml.ScalarNode {
			return msg + `, e.g. matchers: ['team="infra"']`
		}
		m, err := labels.NewMatcher(typ, kn.Value, vn.Value)
		if err != nil {
			return msg + `, e.g. matchers: ['team="infra"']`
		}
		ms = append(ms, "'"+strings.ReplaceAll(m.String(), "'", "''")+"'")
	}
	return msg + " instead: matchers: [" + strings.Join(ms, ", ") + "]"
}

// keyPlaces is, for each key of the schema, where it is valid: the paths
// of its parents, with [] for any item of a list (receivers[].mentions).
// A struct inside itself (a route's routes) is not walked again.
var keyPlaces = sync.OnceValue(func() map[string][]string {
	places := map[string][]string{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			if t.Kind() == reflect.Slice {
				path += "[]"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == urlType || seen[t] {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		info := fieldsOf(t)
		for _, name := range info.names {
			places[name] = append(places[name], path)
			walk(info.fields[name], childKey(path, name))
		}
	}
	walk(configType, "")
	return places
})

type structInfo struct {
	fields    map[string]reflect.Type
	names     []string     // in the order of the struct, for suggestions
	inlineMap reflect.Type // the value type of an inline map, if any
}

var structInfos sync.Map // reflect.Type → *structInfo

// fieldsOf is the keys of struct t as yaml.v3 reads them: the yaml tag's
// name or the field's name in lower case, inline structs' keys included.
func fieldsOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{fields: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Struct:
					add(ft)
				case reflect.Map:
					info.inlineMap = ft.Elem()
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, ok := info.fields[name]; !ok {
				info.fields[name] = f.Type
				info.names = append(info.names, name)
			}
		}
	}
	add(t)
	v, _ := structInfos.LoadOrStore(t, info)
	return v.(*structInfo)
}

var (
	yamlLine      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	cannotDecode  = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into \\S+")
	yamlKindNames = map[string]string{"map": "a mapping", "seq": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true or false", "null": "nothing", "binary": "binary data", "timestamp": "a time"}
)

// yamlErrors turns an error of the YAML library into problems, each on its
// line, without the Go types it names.
func yamlErrors(err error) Errors {
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	var out Errors
	for _, l := range lines {
		e := &Error{Msg: strings.TrimPrefix(l, "yaml: ")}
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		e.Msg = decodeMessage(errors.New(e.Msg))
		out = append(out, e)
	}
	return out
}

// decodeMessage is err's text without yaml.v3's Go type names.
func decodeMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, l := range te.Errors {
			if m := yamlLine.FindStringSubmatch(l); m != nil {
				l = m[2]
			}
			msgs[i] = decodeMessage(errors.New(l))
		}
		return strings.Join(msgs, "; ")
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return cannotDecode.ReplaceAllStringFunc(msg, func(s string) string {
		m := cannotDecode.FindStringSubmatch(s)
		what := yamlKindNames[m[1]]
		if what == "" {
			what = "this value"
		}
		return "cannot use " + what + " here"
	})
}
