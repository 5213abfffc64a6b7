package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/common/model"
)

// TimeLayout is how rotation and override times are written: local wall
// time in the rotation's time zone.
const TimeLayout = "2006-01-02T15:04:05"

type problems []error

func (p *problems) add(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	*p = append(*p, errors.New(msg))
}

func (c *Config) validate() error {
	var p problems
	c.validateFeishu(&p)
	c.validateIntake(&p)
	c.validateState(&p)
	if !validLanguage(c.Language) {
		p.add(0, "language %q: must be en or zh", c.Language)
	}
	loc, err := loadLocation(c.Timezone)
	if err != nil {
		p.add(0, "timezone %q: %v", c.Timezone, err)
		loc = time.UTC
	}
	rotations := c.validateOnCall(&p)
	receivers := c.validateReceivers(&p, rotations, loc)
	c.validateActions(&p, rotations)
	c.validateEscalations(&p, rotations)
	c.validateRoute(&p, receivers)
	return errors.Join(p...)
}

func validLanguage(l string) bool { return l == "en" || l == "zh" }

// loadLocation loads an IANA time zone; unlike time.LoadLocation it refuses
// "", which would quietly mean UTC.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return nil, errors.New("not an IANA time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errors.New("not an IANA time zone")
	}
	return loc, nil
}

func (c *Config) validateFeishu(p *problems) {
	f := &c.Feishu
	if !IsWebURL(f.BaseURL) {
		p.add(0, "feishu.base_url %q: must be an http or https URL", f.BaseURL)
	}
	f.BaseURL = strings.TrimRight(f.BaseURL, "/")
	switch f.API {
	case APIv4, APIIMv1:
	default:
		p.add(0, "feishu.api %q: must be %s or %s", f.API, APIv4, APIIMv1)
	}
	if l := f.RateLimit; l.PerChat < 0 || l.PerApp < 0 || l.PerAppMinute < 0 || l.PerBot < 0 || l.PerBotMinute < 0 {
		p.add(0, "feishu.rate_limit: values must not be negative")
	}
	if err := f.HTTPConfig.Validate(); err != nil {
		p.add(0, "feishu.http_config: %v", err)
	}
	// The app's credentials are needed as soon as a receiver is an app
	// target; a configuration of custom bots alone needs no app.
	needsApp := false
	for _, r := range c.Receivers {
		needsApp = needsApp || !r.IsBot()
	}
	if f.AppID == "" && needsApp {
		p.add(0, "feishu.app_id is missing (a receiver sends through the app)")
	}
	switch {
	case f.AppSecret == "" && f.AppSecretFile == "" && (needsApp || f.AppID != ""):
		p.add(0, "feishu: one of app_secret or app_secret_file is required")
	case f.AppSecret != "" && f.AppSecretFile != "":
		p.add(0, "feishu: app_secret and app_secret_file are mutually exclusive")
	}
}

// validateBot checks a custom bot receiver's webhook and secret settings,
// and that an app receiver has none.
func (c *Config) validateBot(p *problems, r *Receiver) {
	if r.WebhookURL != "" && r.WebhookURLFile != "" {
		p.add(r.Line, "receiver %q: webhook_url and webhook_url_file are mutually exclusive", r.Name)
	}
	if r.Secret != "" && r.SecretFile != "" {
		p.add(r.Line, "receiver %q: secret and secret_file are mutually exclusive", r.Name)
	}
	if !r.IsBot() {
		if r.Secret != "" || r.SecretFile != "" {
			p.add(r.Line, "receiver %q: secret is for a custom bot's webhook_url", r.Name)
		}
		return
	}
	// An inline URL is checked here; one from a file when it is read. The
	// URL itself is a credential and is never repeated in an error.
	if u := string(r.WebhookURL); u != "" && !IsWebURL(u) {
		p.add(r.Line, "receiver %q: webhook_url must be an http or https URL", r.Name)
	}
}

func (c *Config) validateIntake(p *problems) {
	if c.Intake.BearerToken != "" && c.Intake.BearerTokenFile != "" {
		p.add(0, "intake: bearer_token and bearer_token_file are mutually exclusive")
	}
}

func (c *Config) validateState(p *problems) {
	s := &c.State
	switch s.Backend {
	case "file":
		if s.Path == "" {
			p.add(0, "state.path is required for the file backend")
		}
	case "redis":
		r := &s.Redis
		switch {
		case len(r.Addresses) == 0:
			p.add(0, "state.redis.addresses: at least one address is required for the redis backend")
		case len(r.Addresses) > 1 && r.MasterName == "" && r.DB != 0:
			p.add(0, "state.redis.db: Redis Cluster (several addresses without master_name) has only db 0")
		}
		for _, a := range r.Addresses {
			if _, _, err := net.SplitHostPort(a); err != nil {
				p.add(0, "state.redis.addresses: %q is not host:port", a)
			}
		}
	default:
		p.add(0, "state.backend %q: must be file or redis", s.Backend)
	}
	if s.ChainTTL <= 0 {
		p.add(0, "state.chain_ttl must be positive")
	}
	if s.DedupeWindow <= 0 {
		p.add(0, "state.dedupe_window must be positive")
	}
	if s.Redis.Password != "" && s.Redis.PasswordFile != "" {
		p.add(0, "state.redis: password and password_file are mutually exclusive")
	}
}

func (c *Config) validateOnCall(p *problems) map[string]bool {
	names := map[string]bool{}
	for _, r := range c.OnCall {
		switch {
		case r.Name == "":
			p.add(r.Line, "oncall: a rotation has no name")
		case names[r.Name]:
			p.add(r.Line, "oncall %q: duplicate rotation name", r.Name)
		}
		names[r.Name] = true
		loc, err := loadLocation(r.Timezone)
		if err != nil {
			p.add(r.Line, "oncall %q: timezone %q is not an IANA time zone", r.Name, r.Timezone)
			loc = time.UTC
		}
		if _, err := time.ParseInLocation(TimeLayout, r.Start, loc); err != nil {
			p.add(r.Line, "oncall %q: start %q: want local time like 2026-01-05T10:00:00", r.Name, r.Start)
		}
		if r.Shift <= 0 {
			p.add(r.Line, "oncall %q: shift must be positive", r.Name)
		}
		if len(r.Members) == 0 {
			p.add(r.Line, "oncall %q: no members", r.Name)
		}
		for i, m := range r.Members {
			if err := m.validate(); err != nil {
				p.add(r.Line, "oncall %q: members[%d]: %v", r.Name, i, err)
			}
		}
		for i, o := range r.Overrides {
			start, err1 := time.ParseInLocation(TimeLayout, o.Start, loc)
			end, err2 := time.ParseInLocation(TimeLayout, o.End, loc)
			switch {
			case err1 != nil || err2 != nil:
				p.add(r.Line, "oncall %q: overrides[%d]: start and end want local time like 2026-01-05T10:00:00", r.Name, i)
			case !end.After(start):
				p.add(r.Line, "oncall %q: overrides[%d]: end is not after start", r.Name, i)
			}
			if err := o.Member.validate(); err != nil {
				p.add(r.Line, "oncall %q: overrides[%d].member: %v", r.Name, i, err)
			}
		}
	}
	return names
}

func (m Person) validate() error {
	n := 0
	for _, v := range []string{m.Email, m.OpenID, m.UserID} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("exactly one of email, open_id or user_id is required")
	case m.Email != "" && !strings.Contains(m.Email, "@"):
		return fmt.Errorf("email %q is not an email address", m.Email)
	case m.OpenID != "" && !strings.HasPrefix(m.OpenID, "ou_"):
		return fmt.Errorf("open_id %q does not start with ou_", m.OpenID)
	case strings.EqualFold(m.UserID, "all"):
		// A mention of user_id all is @all: that is mentions.all_when's.
		return errors.New(`user_id "all" would mention everyone in the chat`)
	}
	return nil
}

// validateReceivers checks the receivers and fills in what they inherit;
// loc is the top-level time zone, loaded.
func (c *Config) validateReceivers(p *problems, rotations map[string]bool, loc *time.Location) map[string]bool {
	names := map[string]bool{}
	if len(c.Receivers) == 0 {
		p.add(0, "receivers: at least one receiver is required")
	}
	for _, r := range c.Receivers {
		switch {
		case r.Name == "":
			p.add(r.Line, "receivers: a receiver has no name")
		case names[r.Name]:
			p.add(r.Line, "receiver %q: duplicate receiver name", r.Name)
		}
		names[r.Name] = true
		n := 0
		for _, t := range r.targets() {
			if t.id != "" {
				n++
			}
		}
		if n != 1 {
			p.add(r.Line, "receiver %q: exactly one of chat_id, open_id, user_id, email or webhook_url is required", r.Name)
		}
		c.validateBot(p, r)
		switch r.MsgType {
		case "":
			// Cards are im/v1's strength; v4 keeps the plain text it always sent.
			r.MsgType = MsgText
			if c.Feishu.API == APIIMv1 {
				r.MsgType = MsgInteractive
			}
		case MsgText, MsgPost, MsgInteractive:
		default:
			p.add(r.Line, "receiver %q: msg_type %q: must be %s, %s or %s", r.Name, r.MsgType, MsgText, MsgPost, MsgInteractive)
		}
		if r.Language == "" {
			r.Language = c.Language
		} else if !validLanguage(r.Language) {
			p.add(r.Line, "receiver %q: language %q: must be en or zh", r.Name, r.Language)
		}
		if r.Timezone == "" {
			r.Timezone, r.Location = c.Timezone, loc
		} else {
			var err error
			if r.Location, err = loadLocation(r.Timezone); err != nil {
				p.add(r.Line, "receiver %q: timezone %q: %v", r.Name, r.Timezone, err)
				r.Location = time.UTC
			}
		}
		if m := r.Mentions; m != nil {
			for _, name := range m.OnCall {
				if !rotations[name] {
					p.add(r.Line, "receiver %q: mentions.oncall: no rotation %q", r.Name, name)
				}
			}
			for i, u := range m.Users {
				if err := u.validate(); err != nil {
					p.add(r.Line, "receiver %q: mentions.users[%d]: %v", r.Name, i, err)
				}
			}
			for _, s := range m.AllWhen {
				ms, err := parse.Matchers(s)
				if err != nil {
					p.add(r.Line, "receiver %q: mentions.all_when: matcher %q: %v", r.Name, s, err)
				}
				m.AllWhenMatchers = append(m.AllWhenMatchers, ms...)
			}
			if m.FromLabel != "" && !model.UTF8Validation.IsValidLabelName(m.FromLabel) {
				p.add(r.Line, "receiver %q: mentions.from_label %q is not a label name", r.Name, m.FromLabel)
			}
		}
	}
	return names
}

func (c *Config) validateRoute(p *problems, receivers map[string]bool) {
	root := c.Route
	if root == nil {
		p.add(0, "route is missing")
		return
	}
	if root.Receiver == "" {
		p.add(root.Line, "route: the root route must name a receiver")
	}
	if len(root.Matchers) > 0 {
		p.add(root.Line, "route: the root route must not have matchers")
	}
	var walk func(r *Route, inherited string)
	walk = func(r *Route, inherited string) {
		for _, s := range r.Matchers {
			ms, err := parse.Matchers(s)
			if err != nil {
				p.add(r.Line, "route: matcher %q: %v", s, err)
				continue
			}
			r.Parsed = append(r.Parsed, ms...)
		}
		if r.Receiver == "" {
			r.Receiver = inherited
		} else if !receivers[r.Receiver] {
			p.add(r.Line, "route: receiver %q is not defined", r.Receiver)
		}
		for _, child := range r.Routes {
			if child == nil {
				p.add(r.Line, "route: empty child route")
				continue
			}
			walk(child, r.Receiver)
		}
	}
	walk(root, "")
}
