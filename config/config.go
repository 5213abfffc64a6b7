// Package config reads routing.yaml: the schema, its defaults, and a
// validation that reports every problem at once, each with the key at
// fault and the YAML line it is on.
package config

import (
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// API names the Feishu send API a configuration uses.
const (
	APIv4   = "v4"
	APIIMv1 = "im_v1"
)

// Message types Feishu accepts for alert messages.
const (
	MsgText        = "text"
	MsgPost        = "post"
	MsgInteractive = "interactive"
)

// Config is the whole of routing.yaml.
type Config struct {
	Feishu    Feishu      `yaml:"feishu"`
	Intake    Intake      `yaml:"intake"`
	State     State       `yaml:"state"`
	Templates []string    `yaml:"templates"`
	Language  string      `yaml:"language"`
	Timezone  string      `yaml:"timezone"`
	OnCall    []*Rotation `yaml:"oncall"`
	Actions   *Actions    `yaml:"actions"`
	Receivers []*Receiver `yaml:"receivers"`
	Route     *Route      `yaml:"route"`
}

// Feishu is how the service reaches the Feishu Open Platform as an app.
type Feishu struct {
	BaseURL       string                     `yaml:"base_url"`
	AppID         string                     `yaml:"app_id"`
	AppSecret     commoncfg.Secret           `yaml:"app_secret"`
	AppSecretFile string                     `yaml:"app_secret_file"`
	API           string                     `yaml:"api"`
	RateLimit     RateLimit                  `yaml:"rate_limit"`
	HTTPConfig    commoncfg.HTTPClientConfig `yaml:"http_config"`

	at place
}

// Intake is what a webhook must carry to be accepted: the bearer token that
// Alertmanager sends from its receiver's http_config.authorization.
type Intake struct {
	BearerToken     commoncfg.Secret `yaml:"bearer_token"`
	BearerTokenFile string           `yaml:"bearer_token_file"`

	at place
}

// RateLimit is how fast the service lets itself send; 0 means unlimited.
// The defaults are Feishu's documented limits.
type RateLimit struct {
	PerChat      float64 `yaml:"per_chat"`       // sends per second to one chat or user
	PerApp       float64 `yaml:"per_app"`        // sends per second for the whole app
	PerAppMinute float64 `yaml:"per_app_minute"` // sends per minute for the whole app
	PerBot       float64 `yaml:"per_bot"`        // sends per second through one custom bot
	PerBotMinute float64 `yaml:"per_bot_minute"` // sends per minute through one custom bot
}

// State is where chains and dedupe keys are kept.
type State struct {
	Backend      string         `yaml:"backend"`
	Path         string         `yaml:"path"`
	Redis        Redis          `yaml:"redis"`
	ChainTTL     model.Duration `yaml:"chain_ttl"`
	DedupeWindow model.Duration `yaml:"dedupe_window"`
}

// Redis is the shared state backend for several replicas.
type Redis struct {
	Addresses    []string             `yaml:"addresses"`
	MasterName   string               `yaml:"master_name"`
	Username     string               `yaml:"username"`
	Password     commoncfg.Secret     `yaml:"password"`
	PasswordFile string               `yaml:"password_file"`
	DB           int                  `yaml:"db"`
	KeyPrefix    string               `yaml:"key_prefix"`
	TLSConfig    *commoncfg.TLSConfig `yaml:"tls_config"`

	at place
}

// Rotation is an on-call rotation: members take turns, one shift each.
type Rotation struct {
	Name      string         `yaml:"name"`
	Timezone  string         `yaml:"timezone"`
	Start     string         `yaml:"start"`
	Shift     model.Duration `yaml:"shift"`
	Members   []Person       `yaml:"members"`
	Overrides []Override     `yaml:"overrides"`

	Line int `yaml:"-"`
}

// Override hands a window of a rotation to someone else.
type Override struct {
	Start  string `yaml:"start"`
	End    string `yaml:"end"`
	Member Person `yaml:"member"`
}

// Person names a Feishu user by exactly one of email, open_id or user_id.
type Person struct {
	Email  string `yaml:"email"`
	OpenID string `yaml:"open_id"`
	UserID string `yaml:"user_id"`
}

// Receiver is one Feishu destination and how its messages look.
type Receiver struct {
	Name   string `yaml:"name"`
	ChatID string `yaml:"chat_id"`
	OpenID string `yaml:"open_id"`
	UserID string `yaml:"user_id"`
	Email  string `yaml:"email"`
	// A group's custom bot instead of the app: its webhook URL (a secret:
	// the URL is the credential) and optional signing secret.
	WebhookURL     commoncfg.Secret  `yaml:"webhook_url"`
	WebhookURLFile string            `yaml:"webhook_url_file"`
	Secret         commoncfg.Secret  `yaml:"secret"`
	SecretFile     string            `yaml:"secret_file"`
	MsgType        string            `yaml:"msg_type"`
	Language       string            `yaml:"language"`
	Timezone       string            `yaml:"timezone"`
	Mentions       *Mentions         `yaml:"mentions"`
	Templates      ReceiverTemplates `yaml:"templates"`
	// Actions turns a receiver's buttons off (false) where actions are
	// configured; absent means on.
	Actions *bool `yaml:"actions"`
	// Escalation reaches further people while nobody acknowledges.
	Escalation *Escalation `yaml:"escalation"`

	// Location is Timezone loaded: where the receiver's times are shown.
	Location *time.Location `yaml:"-"`
	Line     int            `yaml:"-"`

	at place
}

// Mentions is a receiver's mention policy.
type Mentions struct {
	OnCall     []string `yaml:"oncall"`
	Users      []Person `yaml:"users"`
	AllWhen    []string `yaml:"all_when"`
	OnResolved bool     `yaml:"on_resolved"`
	FromLabel  string   `yaml:"from_label"`

	// AllWhenMatchers is AllWhen parsed.
	AllWhenMatchers labels.Matchers `yaml:"-"`
}

// ReceiverTemplates replaces a receiver's default templates.
type ReceiverTemplates struct {
	Title string `yaml:"title"`
	Text  string `yaml:"text"`
}

// Target kinds: the Feishu ID type a receiver sends to.
const (
	TargetChatID = "chat_id"
	TargetOpenID = "open_id"
	TargetUserID = "user_id"
	TargetEmail  = "email"
	// TargetWebhook is a group's custom bot. Its ID is the receiver's name:
	// the webhook URL is a secret and never shown.
	TargetWebhook = "webhook"
)

// Target returns the kind and value of the receiver's single target.
func (r *Receiver) Target() (kind, id string) {
	for _, t := range r.targets() {
		if t.id != "" {
			return t.kind, t.id
		}
	}
	return "", ""
}

type target struct{ kind, id string }

func (r *Receiver) targets() []target {
	webhook := ""
	if r.WebhookURL != "" || r.WebhookURLFile != "" {
		webhook = r.Name
	}
	return []target{
		{TargetChatID, r.ChatID}, {TargetOpenID, r.OpenID},
		{TargetUserID, r.UserID}, {TargetEmail, r.Email},
		{TargetWebhook, webhook},
	}
}

// IsBot reports whether the receiver posts through a group's custom bot.
func (r *Receiver) IsBot() bool {
	kind, _ := r.Target()
	return kind == TargetWebhook
}

// Webhook returns a custom bot receiver's URL and signing secret ("" when
// requests are not signed), reading the *_file variants.
func (r *Receiver) Webhook() (url, secret string, err error) {
	if url, err = readSecret(r.WebhookURL, r.WebhookURLFile, r.at, "webhook_url_file"); err != nil {
		return "", "", err
	}
	if !IsWebURL(url) {
		// The URL is a credential: the error does not repeat it.
		return "", "", r.at.problem("webhook_url_file", "the file's content must be an http or https URL")
	}
	if secret, err = readSecret(r.Secret, r.SecretFile, r.at, "secret_file"); err != nil {
		return "", "", err
	}
	return url, secret, nil
}

// Route is a node of the route tree, as written.
type Route struct {
	Receiver string   `yaml:"receiver"`
	Matchers []string `yaml:"matchers"`
	Continue bool     `yaml:"continue"`
	Routes   []*Route `yaml:"routes"`

	// Parsed is Matchers parsed; Line is where the route starts.
	Parsed labels.Matchers `yaml:"-"`
	Line   int             `yaml:"-"`
}

// Default is what an absent key means.
var Default = Config{
	Feishu: Feishu{
		BaseURL:    "https://open.feishu.cn",
		API:        APIIMv1,
		RateLimit:  RateLimit{PerChat: 5, PerApp: 50, PerAppMinute: 1000, PerBot: 5, PerBotMinute: 100},
		HTTPConfig: commoncfg.DefaultHTTPClientConfig,
	},
	State: State{
		Backend:      "file",
		Path:         "data/state.db",
		Redis:        Redis{KeyPrefix: "amfeishu:"},
		ChainTTL:     model.Duration(168 * time.Hour),
		DedupeWindow: model.Duration(10 * time.Minute),
	},
	Language: "en",
	Timezone: "UTC",
}

// UnmarshalYAML starts from Default so that absent keys keep their defaults.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Default
	type plain Config
	return unmarshal((*plain)(c))
}

// Load reads and validates the file at path. Relative paths inside it
// (templates, state.path, *_file) are resolved against the file's folder.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// Parse decodes and validates routing.yaml from b. Its error is Errors:
// every problem it finds, those of decoding and those of validation
// together, each with its key and YAML line.
func Parse(b []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, yamlErrors(err) // not YAML: nothing more can be told
	}
	return parseDoc(&doc)
}

// parseDoc is Parse of a YAML document already parsed. What does not
// decode is removed from doc.
func parseDoc(doc *yaml.Node) (*Config, error) {
	if len(doc.Content) == 0 {
		return nil, Errors{{Msg: "the file is empty"}}
	}
	k := newChecker()
	c := Default
	if k.check(doc.Content[0], configType, "") {
		if err := doc.Decode(&c); err != nil {
			// The check removed what would not decode; this is a
			// safety net.
			k.errs = append(k.errs, yamlErrors(err)...)
		}
	} else {
		k.pruned = append(k.pruned, "") // nothing to validate
	}
	c.annotate(k.lines)
	p := problems{lines: k.lines}
	c.validate(&p)
	errs := k.errs
	// A problem of what was removed is reported once, by the check.
	for _, e := range p.errs {
		if !prunedKey(e.Key, k.pruned) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return &c, nil
}

func prunedKey(key string, pruned []string) bool {
	for _, p := range pruned {
		if within(key, p) {
			return true
		}
	}
	return false
}

func (c *Config) resolvePaths(dir string) {
	for i, t := range c.Templates {
		c.Templates[i] = commoncfg.JoinDir(dir, t)
	}
	c.Feishu.AppSecretFile = commoncfg.JoinDir(dir, c.Feishu.AppSecretFile)
	c.Feishu.HTTPConfig.SetDirectory(dir)
	c.Intake.BearerTokenFile = commoncfg.JoinDir(dir, c.Intake.BearerTokenFile)
	for _, r := range c.Receivers {
		r.WebhookURLFile = commoncfg.JoinDir(dir, r.WebhookURLFile)
		r.SecretFile = commoncfg.JoinDir(dir, r.SecretFile)
	}
	if a := c.Actions; a != nil {
		a.VerificationTokenFile = commoncfg.JoinDir(dir, a.VerificationTokenFile)
		a.EncryptKeyFile = commoncfg.JoinDir(dir, a.EncryptKeyFile)
		a.Alertmanager.HTTPConfig.SetDirectory(dir)
	}
	c.State.Path = commoncfg.JoinDir(dir, c.State.Path)
	c.State.Redis.PasswordFile = commoncfg.JoinDir(dir, c.State.Redis.PasswordFile)
	if c.State.Redis.TLSConfig != nil {
		c.State.Redis.TLSConfig.SetDirectory(dir)
	}
}

// Secret returns the app secret, reading app_secret_file if that is how
// it was given.
func (f *Feishu) Secret() (string, error) {
	return readSecret(f.AppSecret, f.AppSecretFile, f.at, "app_secret_file")
}

// Token returns the bearer token webhooks must carry, "" when none is
// required.
func (i *Intake) Token() (string, error) {
	return readSecret(i.BearerToken, i.BearerTokenFile, i.at, "bearer_token_file")
}

// Secret returns the Redis password, reading password_file if that is how
// it was given.
func (r *Redis) Secret() (string, error) {
	return readSecret(r.Password, r.PasswordFile, r.at, "password_file")
}

// CheckSecretFiles reads every secret file the configuration names, as
// serve does at start and at each reload, and reports each that cannot be
// read or is empty, at its key and line; never what a file holds. It is
// for check-config, which builds its pipeline without reading secrets.
func (c *Config) CheckSecretFiles() error {
	var errs Errors
	add := func(err error) {
		var e *Error
		if errors.As(err, &e) {
			errs = append(errs, e)
		} else if err != nil {
			errs = append(errs, &Error{Msg: err.Error()})
		}
	}
	_, err := c.Feishu.Secret()
	add(err)
	_, err = c.Intake.Token()
	add(err)
	if c.State.Backend == "redis" {
		_, err = c.State.Redis.Secret()
		add(err)
	}
	if a := c.Actions; a != nil && a.Transport == TransportHTTP {
		_, _, err = a.Secrets()
		add(err)
	}
	for _, r := range c.Receivers {
		if r.IsBot() {
			_, _, err = r.Webhook()
			add(err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	errs.sort()
	return errs
}

// IsWebURL reports whether s is an absolute http or https URL: what a
// configured address, or a link in a message, must be.
func IsWebURL(s string) bool {
	u, err := neturl.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// readSecret returns value, or the trimmed content of file when that is how
// the secret was given. The error is key's, in at, and never holds the
// secret.
func readSecret(value commoncfg.Secret, file string, at place, key string) (string, error) {
	if file == "" {
		return string(value), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		e := at.problem(key, "%v", err)
		e.err = err
		return "", e
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", at.problem(key, "%s is empty", file)
	}
	return s, nil
}

// Receiver returns the receiver called name, or nil.
func (c *Config) Receiver(name string) *Receiver {
	for _, r := range c.Receivers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// annotate records where receivers, rotations, routes and the parts that
// read secret files are, so that the problems found after decoding, by
// validation or when a secret file is read, name their lines.
func (c *Config) annotate(lines lineMap) {
	c.Feishu.at = place{"feishu", lines}
	c.Intake.at = place{"intake", lines}
	c.State.Redis.at = place{"state.redis", lines}
	for i, r := range c.Receivers {
		key := itemKey("receivers", i)
		r.Line, r.at = lines.line(key), place{key, lines}
	}
	for i, r := range c.OnCall {
		r.Line = lines.line(itemKey("oncall", i))
	}
	var walk func(r *Route, key string)
	walk = func(r *Route, key string) {
		r.Line = lines.line(key)
		for i, child := range r.Routes {
			if child != nil {
				walk(child, itemKey(childKey(key, "routes"), i))
			}
		}
	}
	if c.Route != nil {
		walk(c.Route, "route")
	}
	if c.Actions != nil {
		c.Actions.Line, c.Actions.at = lines.line("actions"), place{"actions", lines}
	}
}
