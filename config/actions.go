package config

import (
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Transports by which Feishu delivers card callbacks.
const (
	// TransportLongConnection: the service dials out to Feishu, so it
	// needs no public URL.
	TransportLongConnection = "long_connection"
	// TransportHTTP: Feishu posts to /feishu/callback, signed and encrypted.
	TransportHTTP = "http"
)

// MaxSilenceDurations is how many Silence buttons a card has room for.
const MaxSilenceDurations = 5

// Actions is acting on incidents from the buttons of their root cards.
type Actions struct {
	Transport             string           `yaml:"transport"`
	VerificationToken     commoncfg.Secret `yaml:"verification_token"`
	VerificationTokenFile string           `yaml:"verification_token_file"`
	EncryptKey            commoncfg.Secret `yaml:"encrypt_key"`
	EncryptKeyFile        string           `yaml:"encrypt_key_file"`
	Alertmanager          AlertmanagerAPI  `yaml:"alertmanager"`
	// SilenceDurations are the Silence buttons, as written: a button
	// carries its duration as this string.
	SilenceDurations []string `yaml:"silence_durations"`
	Allowed          Allowed  `yaml:"allowed"`

	// Durations is SilenceDurations parsed.
	Durations map[string]time.Duration `yaml:"-"`
	Line      int                      `yaml:"-"`

	at place
}

// AlertmanagerAPI is where silences are made: the first URL that answers.
type AlertmanagerAPI struct {
	URLs       []string                   `yaml:"urls"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config"`
}

// Allowed is who may act from a card; empty: anyone who can click it in
// its chat.
type Allowed struct {
	Users  []Person `yaml:"users"`
	OnCall []string `yaml:"oncall"`
}

// Empty reports whether anyone may act.
func (a Allowed) Empty() bool { return len(a.Users) == 0 && len(a.OnCall) == 0 }

// defaultActions is what an actions block's absent keys mean.
var defaultActions = Actions{
	Transport:        TransportLongConnection,
	SilenceDurations: []string{"1h", "4h", "24h"},
	Alertmanager:     AlertmanagerAPI{HTTPConfig: commoncfg.DefaultHTTPClientConfig},
}

// UnmarshalYAML starts from the defaults, as Config's does.
func (a *Actions) UnmarshalYAML(unmarshal func(any) error) error {
	*a = defaultActions
	a.SilenceDurations = append([]string(nil), defaultActions.SilenceDurations...)
	type plain Actions
	return unmarshal((*plain)(a))
}

// Secrets returns the HTTP callback's Verification Token and Encrypt Key,
// reading their files if that is how they were given.
func (a *Actions) Secrets() (token, key string, err error) {
	if token, err = readSecret(a.VerificationToken, a.VerificationTokenFile, a.at, "verification_token_file"); err != nil {
		return "", "", err
	}
	if key, err = readSecret(a.EncryptKey, a.EncryptKeyFile, a.at, "encrypt_key_file"); err != nil {
		return "", "", err
	}
	return token, key, nil
}

// HasActions reports whether the receiver's root cards carry buttons:
// actions are configured, the receiver's messages are cards sent by the
// app through im/v1 (Feishu sends a card's callbacks to the app that sent
// it, never for a custom bot's, and updates cards in place through im/v1
// only), and the receiver does not turn them off.
func (c *Config) HasActions(r *Receiver) bool {
	return c.Actions != nil && c.Feishu.API == APIIMv1 && !r.IsBot() &&
		r.MsgType == MsgInteractive && (r.Actions == nil || *r.Actions)
}

func (c *Config) validateActions(p *problems, rotations map[string]bool) {
	a := c.Actions
	if a == nil {
		for i, r := range c.Receivers {
			if r.Actions != nil && *r.Actions {
				p.at(itemKey("receivers", i)+".actions", "true needs the top-level actions block")
			}
		}
		return
	}
	if c.Feishu.API != APIIMv1 {
		p.at("actions", "needs feishu.api %s: cards are updated in place through im/v1", APIIMv1)
	}
	if c.Feishu.AppID == "" {
		p.at("actions", "needs feishu.app_id: Feishu sends a card's clicks to the app that sent it")
	}
	switch a.Transport {
	case TransportLongConnection:
		for _, s := range []struct {
			key string
			set bool
		}{
			{"verification_token", a.VerificationToken != ""}, {"verification_token_file", a.VerificationTokenFile != ""},
			{"encrypt_key", a.EncryptKey != ""}, {"encrypt_key_file", a.EncryptKeyFile != ""},
		} {
			if s.set {
				p.at("actions."+s.key, "only for transport %s", TransportHTTP)
			}
		}
	case TransportHTTP:
		checkOneOf(p, "actions", "verification_token", a.VerificationToken, a.VerificationTokenFile)
		checkOneOf(p, "actions", "encrypt_key", a.EncryptKey, a.EncryptKeyFile)
	default:
		p.at("actions.transport", "must be %s or %s, not %q", TransportLongConnection, TransportHTTP, a.Transport)
	}
	for i, u := range a.Alertmanager.URLs {
		if !IsWebURL(u) {
			p.at(itemKey("actions.alertmanager.urls", i), "must be an http or https URL, not %q", u)
		}
	}
	if err := a.Alertmanager.HTTPConfig.Validate(); err != nil {
		p.at("actions.alertmanager.http_config", "%v", err)
	}
	if len(a.SilenceDurations) > MaxSilenceDurations {
		p.at("actions.silence_durations", "at most %d, one button each", MaxSilenceDurations)
	}
	a.Durations = make(map[string]time.Duration, len(a.SilenceDurations))
	for i, s := range a.SilenceDurations {
		key := itemKey("actions.silence_durations", i)
		d, err := model.ParseDuration(s)
		switch {
		case err != nil:
			p.at(key, "want a duration like 30m, 4h or 1d, not %q", s)
		case d <= 0:
			p.at(key, "%q must be longer than 0", s)
		case a.Durations[s] != 0:
			p.at(key, "%q is listed twice", s)
		}
		a.Durations[s] = time.Duration(d)
	}
	for i, u := range a.Allowed.Users {
		u.check(p, itemKey("actions.allowed.users", i))
	}
	rotationNames := keys(rotations)
	for i, name := range a.Allowed.OnCall {
		if !rotations[name] {
			p.at(itemKey("actions.allowed.oncall", i), "no rotation %q%s", name, didYouMeanName(name, rotationNames))
		}
	}
	for i, r := range c.Receivers {
		if r.Actions != nil && *r.Actions && !c.HasActions(r) {
			p.at(itemKey("receivers", i)+".actions", "true needs an app receiver whose msg_type is %s", MsgInteractive)
		}
	}
}

// checkOneOf reports unless exactly one of a secret and its file is given.
func checkOneOf(p *problems, block, key string, value commoncfg.Secret, file string) {
	switch {
	case value == "" && file == "":
		p.at(block+"."+key, "one of %s or %s_file is required", key, key)
	case value != "" && file != "":
		p.at(block+"."+key+"_file", "%s and %s_file are mutually exclusive", key, key)
	}
}
