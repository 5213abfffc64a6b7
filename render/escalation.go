package render

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// escalationTexts are the words of the reply a step sends, in one language.
type escalationTexts struct {
	// reply takes the step and how long nobody acknowledged.
	reply string
	// buzzed says how the mentioned people were buzzed, by urgent kind.
	buzzed map[string]string
	// nobody stands for the mentions when the step reached no one: its
	// rotations had nobody on call.
	nobody string
}

var escalationWords = map[string]*escalationTexts{
	"en": {
		reply: "⏫ Escalated to step %d: nobody acknowledged this for %s.",
		buzzed: map[string]string{
			config.UrgentApp: "(buzzed in Feishu)", config.UrgentSMS: "(buzzed by SMS)", config.UrgentPhone: "(buzzed by phone)",
		},
		nobody: "(nobody to mention: no one is on call)",
	},
	"zh": {
		reply: "⏫ 已升级至第 %d 级：此告警 %s 内无人认领。",
		buzzed: map[string]string{
			config.UrgentApp: "(已应用内加急)", config.UrgentSMS: "(已短信加急)", config.UrgentPhone: "(已电话加急)",
		},
		nobody: "(无人可提及：无人值班)",
	},
}

// EscalationReply is the reply in the incident's chain when step (from 1)
// fires, after nobody acknowledged for after: a text message in the
// receiver's language that mentions the step's people (text mentions, the
// same on both APIs), says how they were buzzed when urgent is not none,
// and names those who could not be mentioned, as notifications do. The
// buzz is said only when someone was mentioned: nobody else is buzzed.
func (r *Renderer) EscalationReply(rc *config.Receiver, step int, after time.Duration, mentions oncall.Mentions, urgent string) (feishu.Message, error) {
	if step < 1 {
		return feishu.Message{}, fmt.Errorf("render: escalation step %d: steps count from 1", step)
	}
	if urgent == "" {
		urgent = config.UrgentNone
	}
	w, ok := escalationWords[rc.Language]
	if !ok {
		w = escalationWords["en"]
	}
	buzzed, ok := w.buzzed[urgent]
	if !ok && urgent != config.UrgentNone {
		return feishu.Message{}, fmt.Errorf("render: unknown urgent kind %q", urgent)
	}
	m := message{lang: rc.Language, mentions: mentions}
	parts := []string{fmt.Sprintf(w.reply, step, model.Duration(after))}
	ids := m.mentioned()
	for _, id := range ids {
		parts = append(parts, textMention(id))
	}
	if len(ids) > 0 && buzzed != "" {
		parts = append(parts, buzzed)
	}
	if note := m.unresolvedNote(textEscaperFor(r.api).value); note != "" {
		parts = append(parts, note)
	} else if len(ids) == 0 {
		parts = append(parts, w.nobody)
	}
	return feishu.Message{Type: config.MsgText, Content: feishu.Text{Text: strings.Join(parts, " ")}}, nil
}

// userID is the shape of a user_id that may go into a card's mention tag,
// as openID is an open_id's: letters, digits, "_" and "-" cannot end the
// tag.
var userID = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// escalatedPerson is how the card names one person a step reached: a
// mention of their open_id or user_id (a step names people by either, as
// mentions do), else the ID as text. user_id all would be @all, and is
// never a person.
func escalatedPerson(id string, w *incidentTexts, value replacer) string {
	if !openID.MatchString(id) && userID.MatchString(id) && !strings.EqualFold(id, "all") {
		return cardMention(id)
	}
	return person(incident.Person{OpenID: id}, w, cardMention, value)
}
