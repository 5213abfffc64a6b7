package render

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// sizeBound lets Render skip measuring a message, so it must exceed the
// real request size for every API and type, whatever the text is made of:
// characters JSON escapes the most, twice, or multi-byte ones.
func TestSizeBoundExceedsTheRequest(t *testing.T) {
	worst := []string{
		strings.Repeat("<", 500), strings.Repeat("\x01", 500), strings.Repeat(`"`, 500),
		strings.Repeat(`\`, 500), strings.Repeat("\u2028", 200), strings.Repeat("告警", 200), "",
		strings.Repeat("**", 250), strings.Repeat("&:", 250), strings.Repeat("](<", 150),
	}
	mentions := oncall.Mentions{
		IDs: []string{"ou_1", "ou_2"}, All: true,
		Unresolved: []oncall.Unresolved{{Email: strings.Repeat("<", 40) + "@example.com", Reason: "not_found"}},
	}
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			for _, text := range worst {
				for _, lang := range []string{"en", "zh"} {
					m := message{
						typ: typ, title: text, body: text + text, lang: lang, color: "red", mentions: mentions,
						links: []link{{text: text, url: "https://example.com/?q=" + text}, {text: "Silence", url: "https://am/#/silences/new"}},
					}
					got := feishu.Footprint(api, m.build())
					require.Positive(t, got)
					require.GreaterOrEqual(t, m.sizeBound(), got, "%s %s %q", api, typ, text[:min(len(text), 8)])

					// With an incident's state and buttons, whose labels
					// and values hold the same text.
					st := &CardState{ID: text, Durations: []string{text, "4h"},
						Ack: &incident.Ack{By: incident.Person{Name: text}}, Escalation: incident.Escalation{Step: 1}, EscalatedTo: []string{"ou_1"}}
					w := wordsFor(lang)
					p := SamplePayload()
					m.state, m.acts = stateLines(p, st, w, time.UTC), incidentButtons(p, st, w)
					got = feishu.Footprint(api, m.build())
					require.GreaterOrEqual(t, m.sizeBound(), got, "%s %s %q with state", api, typ, text[:min(len(text), 8)])
				}
			}
		}
	}
}
