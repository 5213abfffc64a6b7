package config

import (
	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Urgent kinds: how a step buzzes its people on the root message, as
// Feishu's urgent_app, urgent_sms and urgent_phone calls do.
const (
	UrgentNone  = "none"
	UrgentApp   = "app"
	UrgentSMS   = "sms"
	UrgentPhone = "phone"
)

// Escalation reaches further people, step by step, while an incident of
// the receiver fires and nobody acknowledged or silenced it.
type Escalation struct {
	// When are matchers on a group's common labels; absent: every group
	// of the receiver escalates.
	When  []string         `yaml:"when"`
	Steps []EscalationStep `yaml:"steps"`

	// WhenMatchers is When parsed.
	WhenMatchers labels.Matchers `yaml:"-"`
}

// EscalationStep is one step: when it fires and whom it reaches.
type EscalationStep struct {
	// After is since the incident's first message.
	After   model.Duration `yaml:"after"`
	Mention StepMention    `yaml:"mention"`
	// Urgent is none (or absent), app, sms or phone; UrgentKind reads it.
	Urgent string `yaml:"urgent"`
}

// StepMention are the people a step reaches: the current member of each
// rotation, then the users.
type StepMention struct {
	OnCall []string `yaml:"oncall"`
	Users  []Person `yaml:"users"`
}

// UrgentKind is the step's urgent kind, UrgentNone when it is not given:
// validation does not fill it in, so that the file reads as written.
func (s EscalationStep) UrgentKind() string {
	if s.Urgent == "" {
		return UrgentNone
	}
	return s.Urgent
}

// Applies reports whether a group with commonLabels escalates: never
// without an escalation, always without when matchers.
func (e *Escalation) Applies(commonLabels model.LabelSet) bool {
	if e == nil {
		return false
	}
	return len(e.WhenMatchers) == 0 || e.WhenMatchers.Matches(commonLabels)
}

func validUrgent(kind string) bool {
	switch kind {
	case UrgentNone, UrgentApp, UrgentSMS, UrgentPhone:
		return true
	}
	return false
}

// validateEscalations checks every receiver's escalation. It runs after
// validateReceivers, which decides what a receiver is.
func (c *Config) validateEscalations(p *problems, rotations map[string]bool) {
	rotationNames := keys(rotations)
	for i, r := range c.Receivers {
		e := r.Escalation
		if e == nil {
			continue
		}
		key := itemKey("receivers", i) + ".escalation"
		if r.IsBot() {
			// Feishu sends a custom bot's card clicks nowhere: nobody
			// could acknowledge the incident, and every step would fire.
			p.at(key, "a custom bot's messages cannot be acknowledged from a card, so nothing could stop it; send through the app")
		}
		for j, s := range e.When {
			ms, err := parse.Matchers(s)
			if err != nil {
				p.at(itemKey(key+".when", j), "matcher %q: %v", s, err)
			}
			e.WhenMatchers = append(e.WhenMatchers, ms...)
		}
		if len(e.Steps) == 0 {
			p.at(key+".steps", "at least one step is required")
		}
		var before model.Duration
		for j, s := range e.Steps {
			skey := itemKey(key+".steps", j)
			switch {
			case s.After <= 0:
				p.at(skey+".after", "must be positive")
			case j > 0 && s.After <= before:
				p.at(skey+".after", "%s must be later than the step before's %s", s.After, before)
			}
			before = s.After
			if len(s.Mention.OnCall) == 0 && len(s.Mention.Users) == 0 {
				p.at(skey+".mention", "names nobody: a step must reach someone")
			}
			for k, name := range s.Mention.OnCall {
				if !rotations[name] {
					p.at(itemKey(skey+".mention.oncall", k), "no rotation %q%s", name, didYouMeanName(name, rotationNames))
				}
			}
			for k, u := range s.Mention.Users {
				u.check(p, itemKey(skey+".mention.users", k))
			}
			switch kind := s.UrgentKind(); {
			case !validUrgent(kind):
				p.at(skey+".urgent", "must be %s, %s, %s or %s, not %q", UrgentNone, UrgentApp, UrgentSMS, UrgentPhone, s.Urgent)
			case kind != UrgentNone && !r.IsBot() && c.Feishu.API != APIIMv1:
				// A bot receiver is refused above already.
				p.at(skey+".urgent", "%s needs feishu.api %s: Feishu's urgent calls are im/v1's", kind, APIIMv1)
			}
		}
	}
}
