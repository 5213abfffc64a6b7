package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// broken are files with problems and exactly what Parse says of them, in
// order: one line each, with the key's path and its line.
var broken = []struct {
	name string
	yaml string
	want []string
}{
	// Decoding: unknown keys, with what was meant.
	{"misspelt receiver key", `
feishu: {app_id: cli_x, app_secret: s}
receivers:
  - name: infra
    chatid: oc_infra
route: {receiver: infra}
`, []string{
		`line 4: receivers[0]: exactly one of chat_id, open_id, user_id, email or webhook_url is required`,
		`line 5: receivers[0].chatid: unknown key; did you mean chat_id?`,
	}},
	{"key in another case", minimal + "Language: zh\n", []string{
		`line 10: Language: unknown key; did you mean language?`,
	}},
	{"unknown key without a near one", minimal + "colour: red\n", []string{
		`line 10: colour: unknown key`,
	}},
	{"unknown key among few", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  rate_limit:\n    burst: 3\n", 1), []string{
		`line 6: feishu.rate_limit.burst: unknown key; the keys here are per_chat, per_app, per_app_minute, per_bot, per_bot_minute`,
	}},
	{"swapped letters", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secert: s3cret\n", 1), []string{
		`line 2: feishu.app_secret: one of app_secret or app_secret_file is required`,
		`line 4: feishu.app_secert: unknown key; did you mean app_secret?`,
	}},
	{"keys under the wrong parent", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  receivers: []\n  matchers: [a]\n  chain_ttl: 1h\n  name: x\n", 1), []string{
		`line 5: feishu.receivers: unknown key here; receivers belongs at the top level`,
		`line 6: feishu.matchers: unknown key here; matchers belongs under route`,
		`line 7: feishu.chain_ttl: unknown key here; chain_ttl belongs under state`,
		`line 8: feishu.name: unknown key here; name belongs under oncall[] or under receivers[]`,
	}},
	{"key given twice", strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    chat_id: oc_other\n", 1), []string{
		`line 8: receivers[0].chat_id: given twice, first on line 7`,
	}},
	// Alertmanager's route keys.
	{"match", minimal + "  routes:\n    - match: {team: infra, severity: page}\n      receiver: infra\n", []string{
		`line 11: route.routes[0].match: match is Alertmanager's deprecated form and is not supported here; write matchers instead: matchers: ['team="infra"', 'severity="page"']`,
	}},
	{"match_re", minimal + "  routes:\n    - receiver: infra\n      match_re:\n        service: db|cache\n", []string{
		`line 12: route.routes[0].match_re: match_re is Alertmanager's deprecated form and is not supported here; write matchers instead: matchers: ['service=~"db|cache"']`,
	}},
	{"match of a quote", minimal + "  routes:\n    - {receiver: infra, match: {\"service.name\": \"it's\"}}\n", []string{
		`line 11: route.routes[0].match: match is Alertmanager's deprecated form and is not supported here; write matchers instead: matchers: ['service.name="it''s"']`,
	}},
	{"match that is not a mapping", minimal + "  match: team=infra\n", []string{
		`line 10: route.match: match is Alertmanager's deprecated form and is not supported here; write matchers, e.g. matchers: ['team="infra"']`,
	}},
	{"grouping", minimal + "  group_by: [alertname]\n", []string{
		`line 10: route.group_by: unknown key: group_by belongs on Alertmanager's route; this service routes the groups Alertmanager sends it`,
	}},
	// Decoding: values of the wrong kind.
	{"bad duration", minimal + "state:\n  chain_ttl: 7days\n", []string{
		`line 11: state.chain_ttl: want a duration like 30s, 10m or 24h, not "7days"`,
	}},
	{"bad number", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  rate_limit: {per_chat: fast}\n", 1), []string{
		`line 5: feishu.rate_limit.per_chat: want a number, not "fast"`,
	}},
	{"bad whole number", minimal + "state:\n  redis: {db: two}\n", []string{
		`line 11: state.redis.db: want a whole number, not "two"`,
	}},
	{"bad bool", minimal + "  continue: maybe\n", []string{
		`line 10: route.continue: want true or false, not "maybe"`,
	}},
	{"list for a string", minimal + "language: [en, zh]\n", []string{
		`line 10: language: want a string, not a list`,
	}},
	{"string for a list", minimal + "templates: a.tmpl\n", []string{
		`line 10: templates: want a list, not "a.tmpl"`,
	}},
	{"string for a mapping", minimal + "state: redis\n", []string{
		`line 10: state: want a mapping of keys, not "redis"`,
	}},
	{"mapping for a secret", strings.Replace(minimal, "app_secret: s3cret", "app_secret: {value: s3cret}", 1), []string{
		`line 4: feishu.app_secret: want a string, not a mapping`,
	}},
	{"empty receiver", strings.Replace(minimal, "route:", "  -\nroute:", 1), []string{
		`line 8: receivers[1]: empty entry`,
	}},
	{"receiver that is a string", strings.Replace(minimal, "route:", "  - dba\nroute:", 1), []string{
		`line 8: receivers[1]: want a mapping of keys, not "dba"`,
	}},
	{"not a mapping at all", "- a\n- b\n", []string{
		`line 1: want a mapping of keys, not a list`,
	}},
	{"http_config", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  http_config:\n    proxy_url: '::'\n    bearer_token: a\n    bearer_token_file: b\n    tls_config: {min_version: TLS14}\n", 1), []string{
		`line 5: feishu.http_config: at most one of bearer_token & bearer_token_file must be configured`,
		`line 6: feishu.http_config.proxy_url: want a URL: missing protocol scheme`,
		`line 9: feishu.http_config.tls_config.min_version: want one of TLS10, TLS11, TLS12 or TLS13, not "TLS14"`,
	}},
	{"unknown http_config key", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  http_config: {proxy_ulr: 'http://p'}\n", 1), []string{
		`line 5: feishu.http_config.proxy_ulr: unknown key; did you mean proxy_url?`,
	}},
	{"not YAML", "feishu:\n  app_id: a: b\n", []string{
		`line 2: mapping values are not allowed in this context`,
	}},
	{"not YAML, and the parser tells no line", "feishu: {app_id: [}\n", []string{
		`did not find expected node content`,
	}},
	// Anchors, aliases and merge keys are followed.
	{"merged keys", `
feishu: {app_id: cli_x, app_secret: s}
receivers:
  - &infra {name: infra, chat_id: oc_x, msg_type: text}
  - <<: [*infra, {timezone: Nowhere}]
    name: b
    lanugage: en
route: {receiver: infra}
`, []string{
		`line 5: receivers[1].timezone: "Nowhere" is not an IANA time zone`,
		`line 7: receivers[1].lanugage: unknown key; did you mean language?`,
	}},
	{"merge of a scalar", strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    <<: 5\n", 1), []string{
		`line 8: receivers[0]: << merges a mapping, not "5"`,
	}},
	{"alias in itself", strings.Replace(minimal, "route:\n", "route: &root\n  routes: [*root]\n", 1), []string{
		`line 9: route.routes[0].routes[0]: the alias refers to itself`,
	}},
	// Validation: each problem at its key.
	{"api", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  api: v5\n", 1), []string{
		`line 5: feishu.api: must be v4 or im_v1, not "v5"`,
	}},
	{"language", minimal + "language: fr\n", []string{
		`line 10: language: must be en or zh, not "fr"`,
	}},
	{"time zone", minimal + "timezone: Mars/Olympus\n", []string{
		`line 10: timezone: "Mars/Olympus" is not an IANA time zone`,
	}},
	{"missing app id", strings.Replace(minimal, "  app_id: cli_x\n", "", 1), []string{
		`line 2: feishu.app_id: required: receiver "infra" sends through the app`,
	}},
	{"missing route", strings.Replace(minimal, "route:\n  receiver: infra\n", "", 1), []string{
		`route: required: the root route names the receiver of every group`,
	}},
	{"route to a misspelt receiver", minimal + "  routes:\n    - {receiver: infar}\n", []string{
		`line 11: route.routes[0].receiver: receiver "infar" is not defined; did you mean "infra"?`,
	}},
	{"bad matcher", minimal + "  routes:\n    - receiver: infra\n      matchers: ['team=\"a\"', 'team=~\"(\"']\n", []string{
		"line 12: route.routes[0].matchers[1]: matcher \"team=~\\\"(\\\"\": failed to create matcher: error parsing regexp: missing closing ): `^(?:()$`",
	}},
	{"rotation", minimal + "oncall:\n  - name: r\n    timezone: Mars/Olympus\n    start: tomorrow\n    shift: 0s\n    members: [{email: a@b.c, open_id: ou_x}, {email: bob}]\n    overrides:\n      - {start: '2026-01-02T00:00:00', end: '2026-01-01T00:00:00', member: {user_id: all}}\n", []string{
		`line 12: oncall[0].timezone: "Mars/Olympus" is not an IANA time zone`,
		`line 13: oncall[0].start: want local time like 2026-01-05T10:00:00, not "tomorrow"`,
		`line 14: oncall[0].shift: must be positive`,
		`line 15: oncall[0].members[0]: exactly one of email, open_id or user_id is required`,
		`line 15: oncall[0].members[1].email: "bob" is not an email address`,
		`line 17: oncall[0].overrides[0].end: must be after start`,
		`line 17: oncall[0].overrides[0].member.user_id: "all" would mention everyone in the chat`,
	}},
	{"misspelt rotation", minimal + "oncall:\n  - {name: infra-primary, timezone: UTC, start: '2026-01-01T00:00:00', shift: 24h, members: [{open_id: ou_a}]}\n",
		nil}, // replaced in the test: a mention of infra-primray
	{"no names", strings.Replace(minimal, "route:", "  - {chat_id: oc_b}\nroute:", 1) + "oncall:\n  - {timezone: UTC, start: '2026-01-01T00:00:00', shift: 24h, members: [{open_id: ou_a}]}\n", []string{
		`line 8: receivers[1].name: required`,
		`line 12: oncall[0].name: required`,
	}},
	{"secret file twice", strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  app_secret_file: /x\n", 1), []string{
		`line 5: feishu.app_secret_file: app_secret and app_secret_file are mutually exclusive`,
	}},
	{"redis", minimal + "state:\n  backend: redis\n  redis:\n    addresses: [a:1, redis]\n    db: 3\n", []string{
		`line 13: state.redis.addresses[1]: "redis" is not host:port`,
		`line 14: state.redis.db: Redis Cluster (several addresses without master_name) has only db 0`,
	}},
}

func init() {
	for i, b := range broken {
		if b.name == "misspelt rotation" {
			broken[i].yaml = strings.Replace(b.yaml, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    mentions: {oncall: [infra-primray]}\n", 1)
			broken[i].want = []string{`line 8: receivers[0].mentions.oncall[0]: no rotation "infra-primray"; did you mean "infra-primary"?`}
		}
	}
}

func TestBrokenConfigs(t *testing.T) {
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			_, err := Parse([]byte(b.yaml))
			require.Equal(t, b.want, problemLines(t, err))
		})
	}
}

// problemLines is err's problems, one line each; err must be Errors.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var errs Errors
	require.ErrorAs(t, err, &errs)
	var out []string
	for _, e := range errs {
		require.NotContains(t, e.Msg, "\n", "one line each")
		out = append(out, e.Error())
	}
	return out
}

// goType is what a Go type looks like in a message: a package-qualified
// name (config.plain, model.Duration), a slice or map type, a Go kind, or
// yaml.v3's tags.
var goType = regexp.MustCompile(`\b(config|commoncfg|model|yaml|url|time|labels)\.[A-Za-z]|\[\][a-z*]|map\[|\b(u?int(8|16|32|64)?|float(32|64)|struct|interface)\b|!!`)

// No message names a Go type.
func TestBrokenConfigMessagesHaveNoGoTypes(t *testing.T) {
	n := 0
	for _, b := range broken {
		_, err := Parse([]byte(b.yaml))
		for _, line := range problemLines(t, err) {
			n++
			require.NotRegexp(t, goType, line, b.name)
		}
	}
	require.Greater(t, n, 40)
	require.Regexp(t, goType, "cannot unmarshal !!map into config.plain", "the check would catch yaml.v3's message")
}

// Problems of decoding and of validation come together, in the order of
// their lines, and a value that does not decode hides nothing else.
func TestDecodeAndValidationProblemsTogether(t *testing.T) {
	_, err := Parse([]byte(`
feishu:
  app_id: cli_x
  app_secret: s3cret
  api: v5
receivers:
  - name: infra
    chatid: oc_infra
    msg_type: video
  - name: infra
    chat_id: oc_other
    escalation:
      steps:
        - {after: 10 minutes, mention: {oncall: [nobody]}}
state:
  dedupe_window: 0s
  chain_ttl: forever
language: fr
route:
  receiver: infra
  routes:
    - match: {team: db}
      receiver: dba
`))
	require.Equal(t, []string{
		`line 5: feishu.api: must be v4 or im_v1, not "v5"`,
		`line 7: receivers[0]: exactly one of chat_id, open_id, user_id, email or webhook_url is required`,
		`line 8: receivers[0].chatid: unknown key; did you mean chat_id?`,
		`line 9: receivers[0].msg_type: must be text, post or interactive, not "video"`,
		`line 10: receivers[1].name: duplicate receiver name "infra"`,
		`line 14: receivers[1].escalation.steps[0].after: want a duration like 30s, 10m or 24h, not "10 minutes"`,
		`line 14: receivers[1].escalation.steps[0].mention.oncall[0]: no rotation "nobody"`,
		`line 16: state.dedupe_window: must be positive`,
		`line 17: state.chain_ttl: want a duration like 30s, 10m or 24h, not "forever"`,
		`line 18: language: must be en or zh, not "fr"`,
		`line 22: route.routes[0].match: match is Alertmanager's deprecated form and is not supported here; write matchers instead: matchers: ['team="db"']`,
		`line 23: route.routes[0].receiver: receiver "dba" is not defined`,
	}, problemLines(t, err))
}

// A secret file that cannot be read is reported at its key and line when
// it is read, at start or reload.
func TestSecretFileProblemNamesItsLine(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	file := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(minimal, "app_secret: s3cret", "app_secret_file: missing", 1)+
		"intake:\n  bearer_token_file: empty\n"), 0o600))
	c, err := Load(file)
	require.NoError(t, err)
	_, err = c.Feishu.Secret()
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 4, e.Line)
	require.Equal(t, "feishu.app_secret_file", e.Key)
	require.Equal(t, "line 4: feishu.app_secret_file: open "+filepath.Join(dir, "missing")+": no such file or directory", err.Error())
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = c.Intake.Token()
	require.EqualError(t, err, "line 11: intake.bearer_token_file: "+filepath.Join(dir, "empty")+" is empty")
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "chat_id", "open_id", "user_id", "email", "webhook_url", "msg_type"}
	for name, want := range map[string]string{
		"chatid": "chat_id", "ChatId": "chat_id", "chat-id": "chat_id", "chat_di": "chat_id", "emial": "email",
		"naem": "name", "webhook": "webhook_url", "chat": "chat_id", "id": "", "webhookurl": "webhook_url", "msgtype": "msg_type", "colour": "", "x": "",
	} {
		require.Equal(t, want, suggest(name, keys), name)
	}
}

// The matchers the match: pointer suggests say what match said: put in
// place of it, they load and match the same labels.
func TestMatchPointerGivesEquivalentMatchers(t *testing.T) {
	in := minimal + "  routes:\n    - receiver: infra\n      match: {team: infra, \"service.name\": \"it's\"}\n      match_re: {severity: 'critical|page'}\n"
	_, err := Parse([]byte(in))
	lines := problemLines(t, err)
	require.Len(t, lines, 2)
	out := strings.Replace(minimal, "route:\n", "", 1)
	out = strings.Replace(out, "  receiver: infra\n", "", 1)
	out += "route:\n  receiver: infra\n  routes:\n    - receiver: infra\n"
	var matchers []string
	for _, l := range lines {
		_, list, ok := strings.Cut(l, "instead: matchers: [")
		require.True(t, ok, l)
		matchers = append(matchers, strings.TrimSuffix(list, "]"))
	}
	c, err := Parse([]byte(out + "      matchers: [" + strings.Join(matchers, ", ") + "]\n"))
	require.NoError(t, err)
	ms := c.Route.Routes[0].Parsed
	require.Len(t, ms, 3)
	require.True(t, ms.Matches(map[model.LabelName]model.LabelValue{"team": "infra", "service.name": "it's", "severity": "page"}))
	require.False(t, ms.Matches(map[model.LabelName]model.LabelValue{"team": "infra", "service.name": "it's", "severity": "pager"}), "anchored, as match_re is")
}

// full has a key of every section, for TestEveryKeyMisspeltOrMistyped.
const full = `
feishu:
  base_url: https://open.feishu.cn
  app_id: cli_x
  app_secret: s3cret
  api: im_v1
  rate_limit: {per_chat: 5, per_app: 50, per_app_minute: 1000, per_bot: 5, per_bot_minute: 100}
  http_config:
    proxy_url: http://proxy:3128
    tls_config: {min_version: TLS12, insecure_skip_verify: false}
    follow_redirects: true
intake: {bearer_token: tok}
state:
  backend: redis
  path: data/state.db
  redis: {addresses: ["a:1"], master_name: m, username: u, password: p, db: 1, key_prefix: "x:", tls_config: {server_name: r}}
  chain_ttl: 168h
  dedupe_window: 10m
templates: [templates/*.tmpl]
language: en
timezone: UTC
oncall:
  - name: primary
    timezone: Asia/Shanghai
    start: "2026-01-05T10:00:00"
    shift: 24h
    members: [{email: alice@example.com}, {open_id: ou_bob}, {user_id: u_c}]
    overrides:
      - {start: "2026-02-10T10:00:00", end: "2026-02-11T10:00:00", member: {open_id: ou_carol}}
actions:
  transport: http
  verification_token: v
  encrypt_key: e
  alertmanager: {urls: [http://am:9093], http_config: {follow_redirects: true}}
  silence_durations: [1h, 4h]
  allowed: {users: [{email: a@example.com}], oncall: [primary]}
receivers:
  - name: infra
    chat_id: oc_infra
    msg_type: interactive
    language: zh
    timezone: UTC
    actions: true
    mentions: {oncall: [primary], users: [{email: lead@example.com}], all_when: ['severity="critical"'], on_resolved: true, from_label: owner}
    templates: {title: '{{ template "feishu.default.title" . }}', text: '{{ template "feishu.default.text" . }}'}
    escalation:
      when: ['severity="critical"']
      steps:
        - {after: 10m, mention: {oncall: [primary], users: [{email: head@example.com}]}, urgent: app}
  - {name: bot, webhook_url: "https://open.feishu.cn/open-apis/bot/v2/hook/x", secret: s}
route:
  receiver: infra
  routes:
    - {matchers: ['team="infra"'], receiver: bot, continue: true, routes: [{receiver: infra}]}
`

// Every key of full, misspelt, is reported with the key it was, and every
// value, replaced by one of another kind, is reported without a Go type:
// on a line, with its key, and without hiding the others.
func TestEveryKeyMisspeltOrMistyped(t *testing.T) {
	_, err := Parse([]byte(full))
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(full), &doc))
	// Each node of the tree by its position in a walk, with its key path
	// and, for a key, the key's name.
	type spot struct {
		key  string
		name string // "" for a value
	}
	var spots []spot
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				child := childKey(key, n.Content[i].Value)
				spots = append(spots, spot{child, n.Content[i].Value}, spot{child, ""})
				walk(n.Content[i+1], child)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				spots = append(spots, spot{itemKey(key, i), ""})
				walk(item, itemKey(key, i))
			}
		}
	}
	walk(doc.Content[0], "")
	require.Greater(t, len(spots), 150)

	// mutated is full with the i-th node of the walk changed by f.
	mutated := func(i int, f func(*yaml.Node)) *yaml.Node {
		var nodes []*yaml.Node
		var clone func(n *yaml.Node) *yaml.Node
		clone = func(n *yaml.Node) *yaml.Node {
			c := *n
			c.Content = make([]*yaml.Node, len(n.Content))
			for i, child := range n.Content {
				c.Content[i] = clone(child)
			}
			return &c
		}
		d := clone(&doc)
		var collect func(n *yaml.Node)
		collect = func(n *yaml.Node) {
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					nodes = append(nodes, n.Content[i], n.Content[i+1])
					collect(n.Content[i+1])
				}
			case yaml.SequenceNode:
				for _, item := range n.Content {
					nodes = append(nodes, item)
					collect(item)
				}
			}
		}
		collect(d.Content[0])
		f(nodes[i])
		return d
	}
	for i, s := range spots {
		var variants []func(*yaml.Node)
		if s.name != "" {
			variants = append(variants, func(n *yaml.Node) { n.Value += "x" })
		} else {
			variants = append(variants,
				// The node put in keeps the line of the one it replaces.
				func(n *yaml.Node) { *n = yaml.Node{Kind: yaml.ScalarNode, Value: "zz?", Line: n.Line} },
				func(n *yaml.Node) {
					*n = yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Content: []*yaml.Node{
						{Kind: yaml.ScalarNode, Value: "zz", Line: n.Line}, {Kind: yaml.ScalarNode, Value: "1", Line: n.Line},
					}}
				},
				func(n *yaml.Node) {
					*n = yaml.Node{Kind: yaml.SequenceNode, Line: n.Line, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "zz", Line: n.Line}}}
				},
			)
		}
		for v, f := range variants {
			in := mutated(i, f)
			top := map[string]bool{}
			for j := 0; j < len(in.Content[0].Content); j += 2 {
				top[in.Content[0].Content[j].Value] = true
			}
			_, err := parseDoc(in)
			if s.name != "" {
				require.Error(t, err, "%s misspelt", s.key)
				require.Contains(t, err.Error(), s.key+"x: unknown key; did you mean "+s.name+"?")
			}
			if err == nil {
				continue
			}
			var errs Errors
			require.ErrorAs(t, err, &errs)
			for _, e := range errs {
				require.NotRegexp(t, goType, e.Error(), "%s variant %d", s.key, v)
				require.NotContains(t, e.Msg, "\n")
				if e.Line == 0 {
					// Only a key none of whose enclosing keys is written
					// has no line.
					first, _, _ := strings.Cut(strings.SplitN(e.Key, "[", 2)[0], ".")
					require.False(t, top[first], "%s variant %d: %v", s.key, v, e)
				}
			}
		}
	}
}

// CheckSecretFiles reads every secret file serve would, and reports each
// that is missing or empty at its key and line, never what one holds.
func TestCheckSecretFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"hook": "not-a-url-tok-123\n", "empty": " \n", "good": "s3cret-file\n", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/x\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	file := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
feishu: {app_id: cli_x, app_secret_file: good}
intake: {bearer_token_file: nope}
state:
  backend: redis
  redis: {addresses: ["r:6379"], password_file: empty}
actions:
  transport: http
  verification_token_file: good
  encrypt_key_file: nope
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: bot, webhook_url_file: hook}
  - {name: bot2, webhook_url_file: url, secret_file: nope}
route: {receiver: infra}
`), 0o600))
	c, err := Load(file)
	require.NoError(t, err)
	nope := filepath.Join(dir, "nope")
	require.Equal(t, []string{
		"line 3: intake.bearer_token_file: open " + nope + ": no such file or directory",
		"line 6: state.redis.password_file: " + filepath.Join(dir, "empty") + " is empty",
		"line 10: actions.encrypt_key_file: open " + nope + ": no such file or directory",
		"line 13: receivers[1].webhook_url_file: the file's content must be an http or https URL",
		"line 14: receivers[2].secret_file: open " + nope + ": no such file or directory",
	}, problemLines(t, c.CheckSecretFiles()))
	require.NotContains(t, c.CheckSecretFiles().Error(), "tok-123")
}
