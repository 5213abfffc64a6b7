package render

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Options are what a message shows of its incident besides the notification.
type Options struct {
	// FirstSent, when not zero, is when the group's first message went. A
	// custom bot cannot reply, so a later message names that time on its
	// first line instead, for a reader to pair them.
	FirstSent time.Time
	// Card is the incident's state and buttons on the root card of a
	// receiver with actions; nil shows neither, and the card is as it
	// always was. It is ignored for any message that is not a card.
	Card *CardState
	// MaxBytes, when above 0, is the size the message is cut to instead of
	// MaxBytes(api, type): less, for a second try after Feishu refused the
	// message for its size.
	MaxBytes int
}

// CardState is what a root card shows of its incident.
type CardState struct {
	// ID is the incident's ID, carried by every button's value. Without it
	// the card shows the state but no buttons: a value naming no incident
	// would only be refused.
	ID string
	// Durations are the silence_durations as written ("1h", "4h"), one
	// Silence button each, in that order.
	Durations []string
	// Ack is set once the incident is acknowledged.
	Ack *incident.Ack
	// Silence is the incident's active silence; the caller passes nil once
	// it has expired. Its link is <payload externalURL>/#/silences/<ID>.
	Silence *incident.Silence
	// Escalation's Step, when above 0, is shown as the step reached.
	Escalation incident.Escalation
	// EscalatedTo are the open_ids and user_ids that step reached (the IDs
	// of oncall.Policy.Reach), shown as mentions.
	EscalatedTo []string
}

// Action is what someone did from a card, for the reply that records it in
// the chain.
type Action struct {
	Kind string // ActionAck, ActionSilence or ActionUnsilence
	// By is who acted: the open_id always, the name when Feishu's contacts
	// told it.
	By incident.Person
	// Duration is a silence's, as written on its button.
	Duration string
	// Until is when a silence ends.
	Until time.Time
	// SilenceURL links to the silence in Alertmanager's UI; "" for none.
	// SilenceURL builds it.
	SilenceURL string
}

// Action kinds, as the buttons' values name them (the contract in the design).
const (
	ActionAck       = "ack"
	ActionSilence   = "silence"
	ActionUnsilence = "unsilence"
)

// The keys of a button's value.
const (
	ValueAction   = "action"
	ValueIncident = "incident"
	ValueDuration = "duration"
)

// maxNameBytes bounds a name or duration shown on a card or in a reply:
// they come from Feishu's contacts and the configuration, and must not
// crowd the alerts out of the size limit.
const maxNameBytes = 128

// openID is the shape of an open_id that may go into a mention tag: any
// other character could end the tag or the attribute.
var openID = regexp.MustCompile(`^ou_[0-9A-Za-z_-]{1,64}$`)

// incidentTexts are the words of the incident's part of a card, and of the
// replies that record actions, in one language.
type incidentTexts struct {
	// at formats a time of day, then its date and zone.
	at string
	// State lines, in card markdown.
	acked, silenced, viewSilence, escalated, escalatedTo string
	someone                                              string
	// Buttons and their confirmations, plain text.
	ack, silence, unsilence       string
	silenceTitle, silenceText     string
	unsilenceTitle, unsilenceText string
	customSilence                 string
	// Replies, text; end closes a sentence, link introduces a URL.
	repliedAck, repliedSilence, repliedSilenceFor, repliedUnsilence string
	end, link                                                       string
}

var incidentWords = map[string]*incidentTexts{
	"en": {
		at:    "15:04 (2006-01-02, MST)",
		acked: "✅ **Acknowledged** by %[1]s at %[2]s", silenced: "🔕 **Silenced** until %[1]s by %[2]s",
		viewSilence: "view silence", escalated: "⏫ **Escalated** to step %d", escalatedTo: ": ", someone: "someone",
		ack: "Acknowledge", silence: "Silence %s", unsilence: "Expire silence",
		silenceTitle: "Silence %s", silenceText: "Silence this group in Alertmanager for %s?",
		unsilenceTitle: "Expire silence", unsilenceText: "Expire the silence? This group's alerts will notify again.",
		customSilence: "Custom silence",
		repliedAck:    "✅ %s acknowledged this incident", repliedSilence: "🔕 %[1]s silenced this for %[2]s, until %[3]s",
		repliedSilenceFor: "🔕 %[1]s silenced this for %[2]s", repliedUnsilence: "🔔 %s expired the silence",
		end: ".", link: ": ",
	},
	"zh": {
		at:    "15:04（2006-01-02，MST）",
		acked: "✅ **已认领**：%[1]s 于 %[2]s", silenced: "🔕 **已静默**至 %[1]s，操作人 %[2]s",
		viewSilence: "查看静默", escalated: "⏫ **已升级**至第 %d 级", escalatedTo: "：", someone: "某人",
		ack: "认领", silence: "静默 %s", unsilence: "解除静默",
		silenceTitle: "静默 %s", silenceText: "在 Alertmanager 中将此告警组静默 %s？",
		unsilenceTitle: "解除静默", unsilenceText: "解除静默？此告警组的告警将重新通知。",
		customSilence: "自定义静默",
		repliedAck:    "✅ %s 认领了此告警", repliedSilence: "🔕 %[1]s 将此告警静默 %[2]s，至 %[3]s",
		repliedSilenceFor: "🔕 %[1]s 将此告警静默 %[2]s", repliedUnsilence: "🔔 %s 解除了静默",
		end: "。", link: "：",
	},
}

func wordsFor(lang string) *incidentTexts {
	if w, ok := incidentWords[lang]; ok {
		return w
	}
	return incidentWords["en"]
}

// cleanName is a name or duration from outside on one line and bounded: a
// newline in a name would start a state line of its own ("✅
// Acknowledged by ..."), which escaping does not prevent.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return truncateBytes(strings.TrimSpace(s), maxNameBytes)
}

// person is how a card or a reply names someone: by name when Feishu's
// contacts told it, else by a mention of their open_id, which Feishu shows
// as their name. A mention notifies them, on every message that carries
// it, which is why the name is preferred. An ID that does not look like an
// open_id is shown as text. tag is the mention markup, value the escaper
// of the message's kind.
func person(p incident.Person, w *incidentTexts, tag func(string) string, value replacer) string {
	if name := cleanName(p.Name); name != "" {
		return value.Replace(name)
	}
	if openID.MatchString(p.OpenID) {
		return tag(p.OpenID)
	}
	if id := cleanName(p.OpenID); id != "" {
		return value.Replace(id)
	}
	return w.someone
}

// SilenceURL is the link to silence id in the UI of the Alertmanager at
// externalURL (a payload's), or "" when externalURL is not a web URL or
// the link could not be written safely into card markdown.
func SilenceURL(externalURL, id string) string {
	base := strings.TrimRight(externalURL, "/")
	if id == "" || !config.IsWebURL(base) {
		return ""
	}
	u := markdownURL(base + "/#/silences/" + url.PathEscape(id))
	if len(u) > maxURLBytes {
		return ""
	}
	return u
}

// markdownURL is u fit to be a link target in card markdown, or "" when it
// holds a character that could end the link or start markup. "_" and "~"
// are percent-encoded, which means the same in a URL; the others would
// change its meaning, and a URL with them is not linked at all.
func markdownURL(u string) string {
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-.:/?#@!$+,;=%", c) >= 0:
			b.WriteByte(c)
		case c == '_' || c == '~':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			return ""
		}
	}
	return b.String()
}

// stateLines are what a card says of its incident's state, one line each,
// in card markdown: who acknowledged, the silence, the escalation step.
// They are shown whether or not the group still fires, for the record.
func stateLines(p *webhook.Payload, st *CardState, w *incidentTexts, loc *time.Location) string {
	value := markdownEscaper.value
	var lines []string
	if a := st.Ack; a != nil {
		lines = append(lines, fmt.Sprintf(w.acked, person(a.By, w, cardMention, value), a.At.In(loc).Format(w.at)))
	}
	if s := st.Silence; s != nil {
		line := fmt.Sprintf(w.silenced, s.Until.In(loc).Format(w.at), person(s.By, w, cardMention, value))
		if u := SilenceURL(p.ExternalURL, s.ID); u != "" {
			line += " · [" + w.viewSilence + "](" + u + ")"
		}
		lines = append(lines, line)
	}
	if step := st.Escalation.Step; step > 0 {
		line := fmt.Sprintf(w.escalated, step)
		var who []string
		for _, id := range st.EscalatedTo {
			// These people were paged by the step already; the mention
			// shows them by name, and notifies them again.
			who = append(who, escalatedPerson(id, w, value))
		}
		if len(who) > 0 {
			line += w.escalatedTo + strings.Join(who, " ")
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// incidentButtons are the buttons that still apply to the incident, by the
// contract: firing, Acknowledge and the Silence buttons; acknowledged, the
// Silence buttons; silenced, Expire silence (and Acknowledge while not
// acknowledged); resolved, none. Labels are plain text, neutralised as a
// card's title is; values carry durations as written, for the callback.
func incidentButtons(p *webhook.Payload, st *CardState, w *incidentTexts) []feishu.CardButton {
	if p.Resolved() || st.ID == "" {
		return nil
	}
	plain := func(s string) feishu.CardText { return feishu.CardText{Tag: "plain_text", Content: s} }
	value := func(action string) map[string]string {
		return map[string]string{ValueAction: action, ValueIncident: st.ID}
	}
	var out []feishu.CardButton
	if st.Ack == nil {
		// The first thing on call does: no confirmation in the way, and
		// undoing it is not needed (it only stops the escalation).
		out = append(out, feishu.CardButton{Tag: "button", Type: "primary", Text: plain(w.ack), Value: value(ActionAck)})
	}
	if st.Silence == nil {
		for _, d := range st.Durations {
			shown := textEscaper.value.Replace(cleanName(d))
			v := value(ActionSilence)
			v[ValueDuration] = d
			// A silence hides the group from everyone until it ends, so
			// a stray tap must not make one.
			out = append(out, feishu.CardButton{Tag: "button", Type: "default", Text: plain(fmt.Sprintf(w.silence, shown)), Value: v,
				Confirm: &feishu.CardConfirm{Title: plain(fmt.Sprintf(w.silenceTitle, shown)), Text: plain(fmt.Sprintf(w.silenceText, shown))}})
		}
	} else {
		// Expiring makes the group notify again and resumes its
		// escalation: worth a second tap too.
		out = append(out, feishu.CardButton{Tag: "button", Type: "default", Text: plain(w.unsilence), Value: value(ActionUnsilence),
			Confirm: &feishu.CardConfirm{Title: plain(w.unsilenceTitle), Text: plain(w.unsilenceText)}})
	}
	return out
}

// silenceLink decides the link to Alertmanager's new-silence form on a card
// with an incident's state. It stays on cards without actions, where it
// is the only way to silence. Beside real Silence buttons it is kept but
// named "Custom silence": on call sometimes needs a duration the buttons
// lack, or a silence of one instance rather than the whole group, and two
// buttons both called "Silence" that do different things would be a trap
// at 3 a.m. Once the incident is silenced it is dropped: the state line
// links the silence itself, where it can be extended or edited.
func silenceLink(links []link, st *CardState, w *incidentTexts) []link {
	out := links[:0:0]
	for _, l := range links {
		if l.silence {
			if st.Silence != nil {
				continue
			}
			if len(st.Durations) > 0 && st.ID != "" {
				l.text = w.customSilence
			}
		}
		out = append(out, l)
	}
	return out
}

// ActionReply is the reply in the incident's chain that records an action,
// a text message in the receiver's language and time zone. The name is
// neutralised as text values are; an actor without one is mentioned by
// open_id, which notifies them of their own action, the price of being
// named at all without the contacts scope.
func (r *Renderer) ActionReply(rc *config.Receiver, a Action) (feishu.Message, error) {
	loc := rc.Location
	if loc == nil {
		loc = time.UTC
	}
	w := wordsFor(rc.Language)
	value := textEscaperFor(r.api).value
	who := person(a.By, w, textMention, value)
	var s string
	switch a.Kind {
	case ActionAck:
		s = fmt.Sprintf(w.repliedAck, who)
	case ActionSilence:
		d := value.Replace(cleanName(a.Duration))
		if a.Until.IsZero() {
			s = fmt.Sprintf(w.repliedSilenceFor, who, d)
		} else {
			s = fmt.Sprintf(w.repliedSilence, who, d, a.Until.In(loc).Format(w.at))
		}
	case ActionUnsilence:
		s = fmt.Sprintf(w.repliedUnsilence, who)
	default:
		return feishu.Message{}, fmt.Errorf("render: unknown action %q", a.Kind)
	}
	if a.Kind != ActionAck && config.IsWebURL(a.SilenceURL) && len(a.SilenceURL) <= maxURLBytes {
		s += w.link + value.Replace(a.SilenceURL)
	} else {
		s += w.end
	}
	return feishu.Message{Type: config.MsgText, Content: feishu.Text{Text: s}}, nil
}
