package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const minimal = `
feishu:
  app_id: cli_x
  app_secret: s3cret
receivers:
  - name: infra
    chat_id: oc_infra
route:
  receiver: infra
`

func TestParseMinimalAppliesDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	require.NoError(t, err)
	require.Equal(t, "https://open.feishu.cn", c.Feishu.BaseURL)
	require.Equal(t, APIIMv1, c.Feishu.API)
	require.Equal(t, RateLimit{PerChat: 5, PerApp: 50, PerAppMinute: 1000, PerBot: 5, PerBotMinute: 100}, c.Feishu.RateLimit)
	require.True(t, c.Feishu.HTTPConfig.FollowRedirects)
	require.Equal(t, "file", c.State.Backend)
	require.Equal(t, 168*time.Hour, time.Duration(c.State.ChainTTL))
	require.Equal(t, 10*time.Minute, time.Duration(c.State.DedupeWindow))
	require.Equal(t, "en", c.Language)
	rc := c.Receiver("infra")
	require.Equal(t, MsgInteractive, rc.MsgType, "cards by default on im/v1")
	require.Equal(t, "en", rc.Language)
	require.Equal(t, "UTC", rc.Timezone)
	require.Equal(t, time.UTC.String(), rc.Location.String())
	kind, id := rc.Target()
	require.Equal(t, [2]string{"chat_id", "oc_infra"}, [2]string{kind, id})
}

func TestMessageTypeAndTimezoneDefaults(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  api: v4\n", 1)))
	require.NoError(t, err)
	require.Equal(t, MsgText, c.Receiver("infra").MsgType, "text by default on v4")

	c, err = Parse([]byte(`
feishu: {app_id: cli_x, app_secret: s3cret}
timezone: Asia/Shanghai
receivers:
  - {name: infra, chat_id: oc_infra, msg_type: post}
  - {name: ny, chat_id: oc_ny, msg_type: text, timezone: America/New_York}
route: {receiver: infra}
`))
	require.NoError(t, err)
	require.Equal(t, MsgPost, c.Receiver("infra").MsgType)
	require.Equal(t, "Asia/Shanghai", c.Receiver("infra").Location.String(), "the top-level zone is inherited")
	require.Equal(t, "America/New_York", c.Receiver("ny").Location.String())

	_, err = Parse([]byte(minimal + "timezone: Mars/Olympus\n"))
	require.EqualError(t, err, `line 10: timezone: "Mars/Olympus" is not an IANA time zone`)
	_, err = Parse([]byte(strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    timezone: Nowhere\n", 1)))
	require.EqualError(t, err, `line 8: receivers[0].timezone: "Nowhere" is not an IANA time zone`)
}

func TestParsePartialSectionKeepsOtherDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal + "state:\n  dedupe_window: 5m\n"))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, time.Duration(c.State.DedupeWindow))
	require.Equal(t, 168*time.Hour, time.Duration(c.State.ChainTTL))
	require.Equal(t, "data/state.db", c.State.Path)
}

func TestExampleRoutingYAML(t *testing.T) {
	c, err := Load(filepath.Join("..", "routing.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, c.Receivers)
	// Relative paths are resolved against the file's folder.
	abs, _ := filepath.Abs("..")
	require.Equal(t, filepath.Join(abs, "data", "state.db"), mustAbs(t, c.State.Path))
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

// The design's full schema, oncall and mentions included, is accepted.
func TestDesignSchemaAccepted(t *testing.T) {
	_, err := Parse([]byte(`
feishu:
  base_url: https://open.larksuite.com
  app_id: cli_xxx
  app_secret: xxx
  api: v4
  rate_limit: {per_chat: 5, per_app: 50}
  http_config: {}
state:
  backend: file
  path: data/state.db
  redis:
    addresses: [127.0.0.1:6379]
    password_file: ""
    db: 0
    key_prefix: "amfeishu:"
  chain_ttl: 168h
  dedupe_window: 10m
templates: [templates/*.tmpl]
language: en
oncall:
  - name: infra-primary
    timezone: Asia/Shanghai
    start: "2026-01-05T10:00:00"
    shift: 24h
    members:
      - email: alice@example.com
      - open_id: ou_bob
    overrides:
      - start: "2026-02-10T10:00:00"
        end: "2026-02-11T10:00:00"
        member: {open_id: ou_carol}
receivers:
  - name: infra
    chat_id: oc_infra
    msg_type: text
    language: zh
    mentions:
      oncall: [infra-primary]
      users: [{email: lead@example.com}]
      all_when: ['severity="critical"']
      on_resolved: false
      from_label: owner
    templates:
      title: '{{ template "feishu.default.title" . }}'
      text: '{{ template "feishu.default.text" . }}'
  - name: dba
    email: dba@example.com
route:
  receiver: infra
  routes:
    - matchers: ['team="infra"']
      receiver: infra
      continue: false
      routes: []
`))
	require.NoError(t, err)
}

func TestParseErrorsNameLineAndThing(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want []string
	}{
		"unknown top-level key": {
			yaml: minimal + "colour: red\n",
			want: []string{"line 10: colour: unknown key"},
		},
		"unknown nested key": {
			yaml: strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  rate_limit:\n    per_chats: 3\n", 1),
			want: []string{"line 6: feishu.rate_limit.per_chats: unknown key; did you mean per_chat?"},
		},
		"unknown receiver key": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    chat: x\n", 1),
			want: []string{"line 8: receivers[0].chat: unknown key; did you mean chat_id?"},
		},
		"duplicate receiver": {
			yaml: minimal + "", // replaced below
			want: []string{`line 8: receivers[1].name: duplicate receiver name "infra"`},
		},
		"route to missing receiver": {
			yaml: minimal + "  routes:\n    - matchers: ['team=\"db\"']\n      receiver: dba\n",
			want: []string{`line 12: route.routes[0].receiver: receiver "dba" is not defined`},
		},
		"bad matcher": {
			yaml: minimal + "  routes:\n    - matchers: ['team=~\"(\"']\n      receiver: infra\n",
			want: []string{`line 11: route.routes[0].matchers[0]: matcher "team=~\"(\""`},
		},
		"two targets": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    email: a@b.c\n", 1),
			want: []string{`line 6: receivers[0]: exactly one of chat_id`},
		},
		"no target": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "", 1),
			want: []string{`line 6: receivers[0]: exactly one of`},
		},
		"root matchers": {
			yaml: strings.Replace(minimal, "  receiver: infra\n", "  receiver: infra\n  matchers: ['a=\"b\"']\n", 1),
			want: []string{"line 10: route.matchers: the root route must not have matchers"},
		},
		"secret twice": {
			yaml: strings.Replace(minimal, "  app_secret: s3cret\n", "  app_secret: s3cret\n  app_secret_file: /x\n", 1),
			want: []string{"line 5: feishu.app_secret_file: app_secret and app_secret_file are mutually exclusive"},
		},
		"no route": {
			yaml: strings.Replace(minimal, "route:\n  receiver: infra\n", "", 1),
			want: []string{"route: required"},
		},
		"bad all_when and unknown rotation": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    mentions:\n      oncall: [nobody]\n      all_when: ['sev=~\"[\"']\n", 1),
			want: []string{`line 9: receivers[0].mentions.oncall[0]: no rotation "nobody"`, `line 10: receivers[0].mentions.all_when[0]: matcher`},
		},
		"bad rotation": {
			yaml: minimal + "oncall:\n  - name: r\n    timezone: Mars/Olympus\n    start: tomorrow\n    shift: 0s\n    members: [{email: a@b.c, open_id: ou_x}]\n",
			want: []string{"line 12: oncall[0].timezone", "line 13: oncall[0].start", "line 14: oncall[0].shift: must be positive", "line 15: oncall[0].members[0]: exactly one of email"},
		},
		"bearer token twice": {
			yaml: minimal + "intake: {bearer_token: a, bearer_token_file: b}\n",
			want: []string{"line 10: intake.bearer_token_file: bearer_token and bearer_token_file are mutually exclusive"},
		},
		"webhook and chat": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    webhook_url: https://open.feishu.cn/open-apis/bot/v2/hook/x\n", 1),
			want: []string{`line 6: receivers[0]: exactly one of chat_id, open_id, user_id, email or webhook_url`},
		},
		"secret without webhook": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    secret: x\n", 1),
			want: []string{"line 8: receivers[0].secret: only a custom bot's webhook_url is signed with a secret"},
		},
		"webhook not a URL": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    webhook_url: not-a-url-token-123\n", 1),
			want: []string{"line 7: receivers[0].webhook_url: must be an http or https URL"},
		},
		"redis without address": {
			yaml: minimal + "state:\n  backend: redis\n",
			want: []string{"line 10: state.redis.addresses: at least one address"},
		},
		"redis cluster with a db": {
			yaml: minimal + "state:\n  backend: redis\n  redis:\n    addresses: [a:1, b:2]\n    db: 3\n",
			want: []string{"line 14: state.redis.db: Redis Cluster", "db 0"},
		},
		"redis address without port": {
			yaml: minimal + "state:\n  backend: redis\n  redis:\n    addresses: [redis]\n",
			want: []string{`line 13: state.redis.addresses[0]: "redis" is not host:port`},
		},
		"unsupported msg_type": {
			yaml: strings.Replace(minimal, "    chat_id: oc_infra\n", "    chat_id: oc_infra\n    msg_type: video\n", 1),
			want: []string{`line 8: receivers[0].msg_type: must be text, post or interactive, not "video"`},
		},
	} {
		t.Run(name, func(t *testing.T) {
			y := tc.yaml
			if name == "duplicate receiver" {
				y = strings.Replace(minimal, "route:", "  - name: infra\n    chat_id: oc_other\nroute:", 1)
			}
			_, err := Parse([]byte(y))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`
receivers:
  - name: a
  - name: a
    chat_id: x
route:
  receiver: b
`))
	require.Error(t, err)
	msg := err.Error()
	for _, w := range []string{
		"feishu.app_id: required",
		"line 3: receivers[0]: exactly one of",
		"line 4: receivers[1].name: duplicate receiver name \"a\"",
		"line 7: route.receiver: receiver \"b\" is not defined",
	} {
		require.Contains(t, msg, w)
	}
}

func TestRedisBackendAccepted(t *testing.T) {
	for _, addrs := range []string{"[redis:6379]", "[s1:26379, s2:26379]\n    master_name: mymaster\n    db: 2", "[n1:6379, n2:6379, n3:6379]"} {
		c, err := Parse([]byte(minimal + "state:\n  backend: redis\n  redis:\n    addresses: " + addrs + "\n"))
		require.NoError(t, err, addrs)
		require.Equal(t, "amfeishu:", c.State.Redis.KeyPrefix)
	}
}

// Custom bots alone need no Feishu app, and their URL and secret are
// secrets: redacted when printed, read from files when given so.
func TestBotReceiversNeedNoApp(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook"), []byte("https://open.feishu.cn/open-apis/bot/v2/hook/tok-123\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "routing.yaml"), []byte(`
receivers:
  - {name: a, webhook_url: "https://open.feishu.cn/open-apis/bot/v2/hook/inline-456", secret: s3cret}
  - {name: b, webhook_url_file: hook}
route: {receiver: a}
`), 0o600))
	c, err := Load(filepath.Join(dir, "routing.yaml"))
	require.NoError(t, err)
	require.True(t, c.Receivers[0].IsBot())
	kind, id := c.Receivers[1].Target()
	require.Equal(t, TargetWebhook, kind)
	require.Equal(t, "b", id, "a bot's target is named by its receiver, never its URL")
	url, secret, err := c.Receivers[1].Webhook()
	require.NoError(t, err)
	require.Equal(t, "https://open.feishu.cn/open-apis/bot/v2/hook/tok-123", url)
	require.Empty(t, secret)
	out, err := yaml.Marshal(c)
	require.NoError(t, err)
	require.NotContains(t, string(out), "inline-456")
	require.NotContains(t, string(out), "s3cret")

	_, err = Parse([]byte("receivers: [{name: a, chat_id: oc_x}, {name: b, webhook_url: 'https://x/hook/y'}]\nroute: {receiver: a}\n"))
	require.ErrorContains(t, err, `feishu.app_id: required: receiver "a" sends through the app`, "an app receiver still needs the app")
}

func TestSecretIsRedactedWhenPrinted(t *testing.T) {
	c, err := Parse([]byte(minimal))
	require.NoError(t, err)
	out, err := yamlMarshal(c)
	require.NoError(t, err)
	require.NotContains(t, out, "s3cret")
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600))
	y := strings.Replace(minimal, "app_secret: s3cret", "app_secret_file: secret", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "routing.yaml"), []byte(y), 0o600))
	c, err := Load(filepath.Join(dir, "routing.yaml"))
	require.NoError(t, err)
	s, err := c.Feishu.Secret()
	require.NoError(t, err)
	require.Equal(t, "from-file", s)
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse([]byte("\n# nothing\n"))
	require.ErrorContains(t, err, "empty")
}
