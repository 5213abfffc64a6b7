package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/common/model"
)

// TimeLayout is how rotation and override times are written: local wall
// time in the rotation's time zone.
const TimeLayout = "2006-01-02T15:04:05"

// validate reports into p every problem of what was decoded, each at the
// key it concerns.
func (c *Config) validate(p *problems) {
	c.validateFeishu(p)
	c.validateIntake(p)
	c.validateState(p)
	if !validLanguage(c.Language) {
		p.at("language", "must be en or zh, not %q", c.Language)
	}
	loc, err := loadLocation(c.Timezone)
	if err != nil {
		p.at("timezone", "%v", err)
		loc = time.UTC
	}
	rotations := c.validateOnCall(p)
	receivers := c.validateReceivers(p, rotations, loc)
	c.validateActions(p, rotations)
	c.validateEscalations(p, rotations)
	c.validateRoute(p, receivers)
}

func validLanguage(l string) bool { return l == "en" || l == "zh" }

// loadLocation loads an IANA time zone; unlike time.LoadLocation it refuses
// "", which would quietly mean UTC.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return nil, errors.New("required: an IANA time zone like Asia/Shanghai")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone", name)
	}
	return loc, nil
}

func (c *Config) validateFeishu(p *problems) {
	f := &c.Feishu
	if !IsWebURL(f.BaseURL) {
		p.at("feishu.base_url", "must be an http or https URL, not %q", f.BaseURL)
	}
	f.BaseURL = strings.TrimRight(f.BaseURL, "/")
	switch f.API {
	case APIv4, APIIMv1:
	default:
		p.at("feishu.api", "must be %s or %s, not %q", APIv4, APIIMv1, f.API)
	}
	l := f.RateLimit
	for _, r := range []struct {
		key   string
		value float64
	}{{"per_chat", l.PerChat}, {"per_app", l.PerApp}, {"per_app_minute", l.PerAppMinute}, {"per_bot", l.PerBot}, {"per_bot_minute", l.PerBotMinute}} {
		if r.value < 0 {
			p.at("feishu.rate_limit."+r.key, "must not be negative")
		}
	}
	if err := f.HTTPConfig.Validate(); err != nil {
		p.at("feishu.http_config", "%v", err)
	}
	// The app's credentials are needed as soon as a receiver is an app
	// target; a configuration of custom bots alone needs no app.
	needsApp, appReceiver := false, ""
	for _, r := range c.Receivers {
		if !r.IsBot() && !needsApp {
			needsApp, appReceiver = true, r.Name
		}
	}
	if f.AppID == "" && needsApp {
		p.at("feishu.app_id", "required: receiver %q sends through the app", appReceiver)
	}
	switch {
	case f.AppSecret == "" && f.AppSecretFile == "" && (needsApp || f.AppID != ""):
		p.at("feishu.app_secret", "one of app_secret or app_secret_file is required")
	case f.AppSecret != "" && f.AppSecretFile != "":
		p.at("feishu.app_secret_file", "app_secret and app_secret_file are mutually exclusive")
	}
}

// validateBot checks a custom bot receiver's webhook and secret settings,
// and that an app receiver has none.
func (c *Config) validateBot(p *problems, key string, r *Receiver) {
	if r.WebhookURL != "" && r.WebhookURLFile != "" {
		p.at(key+".webhook_url_file", "webhook_url and webhook_url_file are mutually exclusive")
	}
	if r.Secret != "" && r.SecretFile != "" {
		p.at(key+".secret_file", "secret and secret_file are mutually exclusive")
	}
	if !r.IsBot() {
		switch {
		case r.Secret != "":
			p.at(key+".secret", "only a custom bot's webhook_url is signed with a secret")
		case r.SecretFile != "":
			p.at(key+".secret_file", "only a custom bot's webhook_url is signed with a secret")
		}
		return
	}
	// An inline URL is checked here; one from a file when it is read. The
	// URL itself is a credential and is never repeated in an error.
	if u := string(r.WebhookURL); u != "" && !IsWebURL(u) {
		p.at(key+".webhook_url", "must be an http or https URL")
	}
}

func (c *Config) validateIntake(p *problems) {
	if c.Intake.BearerToken != "" && c.Intake.BearerTokenFile != "" {
		p.at("intake.bearer_token_file", "bearer_token and bearer_token_file are mutually exclusive")
	}
}

func (c *Config) validateState(p *problems) {
	s := &c.State
	switch s.Backend {
	case "file":
		if s.Path == "" {
			p.at("state.path", "required for the file backend")
		}
	case "redis":
		r := &s.Redis
		switch {
		case len(r.Addresses) == 0:
			p.at("state.redis.addresses", "at least one address is required for the redis backend")
		case len(r.Addresses) > 1 && r.MasterName == "" && r.DB != 0:
			p.at("state.redis.db", "Redis Cluster (several addresses without master_name) has only db 0")
		}
		for i, a := range r.Addresses {
			if _, _, err := net.SplitHostPort(a); err != nil {
				p.at(itemKey("state.redis.addresses", i), "%q is not host:port", a)
			}
		}
	default:
		p.at("state.backend", "must be file or redis, not %q", s.Backend)
	}
	if s.ChainTTL <= 0 {
		p.at("state.chain_ttl", "must be positive")
	}
	if s.DedupeWindow <= 0 {
		p.at("state.dedupe_window", "must be positive")
	}
	if s.Redis.Password != "" && s.Redis.PasswordFile != "" {
		p.at("state.redis.password_file", "password and password_file are mutually exclusive")
	}
}

func (c *Config) validateOnCall(p *problems) map[string]bool {
	names := map[string]bool{}
	for i, r := range c.OnCall {
		key := itemKey("oncall", i)
		switch {
		case r.Name == "":
			p.at(key+".name", "required")
		case names[r.Name]:
			p.at(key+".name", "duplicate rotation name %q", r.Name)
		}
		names[r.Name] = true
		loc, err := loadLocation(r.Timezone)
		if err != nil {
			p.at(key+".timezone", "%v", err)
			loc = time.UTC
		}
		if _, err := time.ParseInLocation(TimeLayout, r.Start, loc); err != nil {
			p.at(key+".start", "%s", badTime(r.Start))
		}
		if r.Shift <= 0 {
			p.at(key+".shift", "must be positive")
		}
		if len(r.Members) == 0 {
			p.at(key+".members", "at least one member is required")
		}
		for j, m := range r.Members {
			m.check(p, itemKey(key+".members", j))
		}
		for j, o := range r.Overrides {
			okey := itemKey(key+".overrides", j)
			start, err1 := time.ParseInLocation(TimeLayout, o.Start, loc)
			end, err2 := time.ParseInLocation(TimeLayout, o.End, loc)
			switch {
			case err1 != nil:
				p.at(okey+".start", "%s", badTime(o.Start))
			case err2 != nil:
				p.at(okey+".end", "%s", badTime(o.End))
			case !end.After(start):
				p.at(okey+".end", "must be after start")
			}
			o.Member.check(p, okey+".member")
		}
	}
	return names
}

// badTime says what is wrong with a rotation's time s.
func badTime(s string) string {
	if s == "" {
		return "required: local time like 2026-01-05T10:00:00"
	}
	return fmt.Sprintf("want local time like 2026-01-05T10:00:00, not %q", s)
}

// check reports the problem of a person written at key, if any.
func (m Person) check(p *problems, key string) {
	n := 0
	for _, v := range []string{m.Email, m.OpenID, m.UserID} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		p.at(key, "exactly one of email, open_id or user_id is required")
	case m.Email != "" && !strings.Contains(m.Email, "@"):
		p.at(key+".email", "%q is not an email address", m.Email)
	case m.OpenID != "" && !strings.HasPrefix(m.OpenID, "ou_"):
		p.at(key+".open_id", "%q does not start with ou_", m.OpenID)
	case strings.EqualFold(m.UserID, "all"):
		// A mention of user_id all is @all: that is mentions.all_when's.
		p.at(key+".user_id", `"all" would mention everyone in the chat`)
	}
}

// validateReceivers checks the receivers and fills in what they inherit;
// loc is the top-level time zone, loaded.
func (c *Config) validateReceivers(p *problems, rotations map[string]bool, loc *time.Location) map[string]bool {
	names := map[string]bool{}
	if len(c.Receivers) == 0 {
		p.at("receivers", "at least one receiver is required")
	}
	rotationNames := keys(rotations)
	for i, r := range c.Receivers {
		key := itemKey("receivers", i)
		switch {
		case r.Name == "":
			p.at(key+".name", "required")
		case names[r.Name]:
			p.at(key+".name", "duplicate receiver name %q", r.Name)
		}
		names[r.Name] = true
		n := 0
		for _, t := range r.targets() {
			if t.id != "" {
				n++
			}
		}
		if n != 1 {
			p.at(key, "exactly one of chat_id, open_id, user_id, email or webhook_url is required")
		}
		c.validateBot(p, key, r)
		switch r.MsgType {
		case "":
			// Cards are im/v1's strength; v4 keeps the plain text it always sent.
			r.MsgType = MsgText
			if c.Feishu.API == APIIMv1 {
				r.MsgType = MsgInteractive
			}
		case MsgText, MsgPost, MsgInteractive:
		default:
			p.at(key+".msg_type", "must be %s, %s or %s, not %q", MsgText, MsgPost, MsgInteractive, r.MsgType)
		}
		if r.Language == "" {
			r.Language = c.Language
		} else if !validLanguage(r.Language) {
			p.at(key+".language", "must be en or zh, not %q", r.Language)
		}
		if r.Timezone == "" {
			r.Timezone, r.Location = c.Timezone, loc
		} else {
			var err error
			if r.Location, err = loadLocation(r.Timezone); err != nil {
				p.at(key+".timezone", "%v", err)
				r.Location = time.UTC
			}
		}
		if m := r.Mentions; m != nil {
			mkey := key + ".mentions"
			for j, name := range m.OnCall {
				if !rotations[name] {
					p.at(itemKey(mkey+".oncall", j), "no rotation %q%s", name, didYouMeanName(name, rotationNames))
				}
			}
			for j, u := range m.Users {
				u.check(p, itemKey(mkey+".users", j))
			}
			for j, s := range m.AllWhen {
				ms, err := parse.Matchers(s)
				if err != nil {
					p.at(itemKey(mkey+".all_when", j), "matcher %q: %v", s, err)
				}
				m.AllWhenMatchers = append(m.AllWhenMatchers, ms...)
			}
			if m.FromLabel != "" && !model.UTF8Validation.IsValidLabelName(m.FromLabel) {
				p.at(mkey+".from_label", "%q is not a label name", m.FromLabel)
			}
		}
	}
	return names
}

func (c *Config) validateRoute(p *problems, receivers map[string]bool) {
	root := c.Route
	if root == nil {
		p.at("route", "required: the root route names the receiver of every group")
		return
	}
	if root.Receiver == "" {
		p.at("route.receiver", "the root route must name a receiver")
	}
	if len(root.Matchers) > 0 {
		p.at("route.matchers", "the root route must not have matchers")
	}
	receiverNames := keys(receivers)
	var walk func(r *Route, key, inherited string)
	walk = func(r *Route, key, inherited string) {
		for i, s := range r.Matchers {
			ms, err := parse.Matchers(s)
			if err != nil {
				p.at(itemKey(key+".matchers", i), "matcher %q: %v", s, err)
				continue
			}
			r.Parsed = append(r.Parsed, ms...)
		}
		if r.Receiver == "" {
			r.Receiver = inherited
		} else if !receivers[r.Receiver] {
			p.at(key+".receiver", "receiver %q is not defined%s", r.Receiver, didYouMeanName(r.Receiver, receiverNames))
		}
		for i, child := range r.Routes {
			if child == nil {
				p.at(itemKey(key+".routes", i), "empty entry")
				continue
			}
			walk(child, itemKey(key+".routes", i), r.Receiver)
		}
	}
	walk(root, "route", "")
}

// keys is the names in set, sorted, for suggestions.
func keys(set map[string]bool) []string {
	return slices.Sorted(maps.Keys(set))
}
