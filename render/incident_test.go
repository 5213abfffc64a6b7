package render

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

const testIncident = "chain.0123456789abcdef0123456789abcdef"

var (
	alice   = incident.Person{OpenID: "ou_alice", Name: "Alice"}
	ackedAt = time.Date(2026, 11, 24, 23, 10, 0, 0, time.UTC)
	ack     = &incident.Ack{By: alice, At: ackedAt}
	// silence is Bob's, by open_id alone: the contacts scope did not name him.
	silence = &incident.Silence{ID: "8f2c1d3e-0b4a-4c5d-9e6f-7a8b9c0d1e2f", Until: ackedAt.Add(4 * time.Hour),
		By: incident.Person{OpenID: "ou_bob"}}
)

// incidentStates are the cards of the golden files, named
// incident-<state>.<lang>.card.json: the captured first notification in
// each state an incident can be in, and the resolution with its record.
var incidentStates = []struct {
	name, payload string
	state         CardState
}{
	{"firing", "firing-HighCPU-seq1-first-notification.json", CardState{}},
	{"acknowledged", "firing-HighCPU-seq1-first-notification.json", CardState{Ack: ack}},
	{"silenced", "firing-HighCPU-seq1-first-notification.json", CardState{Silence: silence}},
	{"acknowledged-silenced", "firing-HighCPU-seq1-first-notification.json", CardState{Ack: ack, Silence: silence}},
	{"escalated", "firing-HighCPU-seq1-first-notification.json",
		CardState{Escalation: incident.Escalation{Step: 2}, EscalatedTo: []string{"ou_lead", "ou_head"}}},
	{"resolved-acknowledged-silenced", "resolved-HighCPU-seq4-all-alerts-resolved.json", CardState{Ack: ack, Silence: silence}},
}

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	return loc
}

func withButtons(st CardState) *CardState {
	st.ID, st.Durations = testIncident, []string{"1h", "4h"}
	return &st
}

// The root card in every state, in both languages, in the receiver's zone.
func TestGoldenIncidentCards(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	for _, s := range incidentStates {
		for _, lang := range []string{"en", "zh"} {
			name := "incident-" + s.name + "." + lang + ".card.json"
			t.Run(name, func(t *testing.T) {
				rc := &config.Receiver{Name: "infra", Language: lang, MsgType: config.MsgInteractive, Location: shanghai(t)}
				m, err := r.RenderWith(load(t, s.payload), rc, oncall.Mentions{}, Options{Card: withButtons(s.state)})
				require.NoError(t, err)
				requireGolden(t, name, indentJSON(t, m.Content))
			})
		}
	}
}

// The reply that records each kind of action, in both languages.
func TestGoldenActionReplies(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	url := SilenceURL("http://127.0.0.1:19093/", silence.ID)
	for _, a := range []Action{
		{Kind: ActionAck, By: alice},
		{Kind: ActionSilence, By: alice, Duration: "4h", Until: silence.Until, SilenceURL: url},
		{Kind: ActionUnsilence, By: incident.Person{OpenID: "ou_bob"}, SilenceURL: url},
	} {
		for _, lang := range []string{"en", "zh"} {
			name := "action-" + a.Kind + "." + lang + ".txt"
			t.Run(name, func(t *testing.T) {
				m, err := r.ActionReply(&config.Receiver{Name: "infra", Language: lang, Location: shanghai(t)}, a)
				require.NoError(t, err)
				requireGolden(t, name, text(t, m))
			})
		}
	}
}

// cardButtons are a card's buttons that act, by label, and its links.
func cardButtons(t *testing.T, c feishu.Card) (acts map[string]feishu.CardButton, links map[string]string) {
	t.Helper()
	acts, links = map[string]feishu.CardButton{}, map[string]string{}
	for _, e := range c.Elements {
		for _, b := range e.Actions {
			if b.Value != nil {
				require.Empty(t, b.URL, "a button either acts or links")
				acts[b.Text.Content] = b
			} else {
				links[b.Text.Content] = b.URL
			}
		}
	}
	return acts, links
}

// The buttons follow the contract: which ones by state, and their values.
func TestCardButtonsByState(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	rc := &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}
	firing, resolved := load(t, "firing-HighCPU-seq1-first-notification.json"), load(t, "resolved-HighCPU-seq4-all-alerts-resolved.json")
	ackValue := map[string]string{"action": "ack", "incident": testIncident}
	silence4h := map[string]string{"action": "silence", "duration": "4h", "incident": testIncident}
	unsilence := map[string]string{"action": "unsilence", "incident": testIncident}
	for _, c := range []struct {
		name  string
		state CardState
		want  map[string]map[string]string
	}{
		{"firing", CardState{}, map[string]map[string]string{"Acknowledge": ackValue, "Silence 1h": nil, "Silence 4h": silence4h}},
		{"acknowledged", CardState{Ack: ack}, map[string]map[string]string{"Silence 1h": nil, "Silence 4h": silence4h}},
		{"silenced", CardState{Silence: silence}, map[string]map[string]string{"Acknowledge": ackValue, "Expire silence": unsilence}},
		{"both", CardState{Ack: ack, Silence: silence}, map[string]map[string]string{"Expire silence": unsilence}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := r.RenderWith(firing, rc, oncall.Mentions{}, Options{Card: withButtons(c.state)})
			require.NoError(t, err)
			acts, _ := cardButtons(t, card(t, m))
			require.Len(t, acts, len(c.want))
			for label, value := range c.want {
				require.Contains(t, acts, label)
				if value != nil {
					require.Equal(t, value, acts[label].Value)
				}
			}
			if b, ok := acts["Acknowledge"]; ok {
				require.Nil(t, b.Confirm, "acknowledging asks nothing")
				require.Equal(t, "primary", b.Type)
			}
			if b, ok := acts["Silence 4h"]; ok {
				require.Equal(t, "Silence this group in Alertmanager for 4h?", b.Confirm.Text.Content)
				require.Equal(t, "plain_text", b.Confirm.Title.Tag)
			}
		})
	}

	m, err := r.RenderWith(resolved, rc, oncall.Mentions{}, Options{Card: withButtons(CardState{Ack: ack, Silence: silence})})
	require.NoError(t, err)
	c := card(t, m)
	acts, _ := cardButtons(t, c)
	require.Empty(t, acts, "nothing to do once resolved")
	require.Contains(t, c.Elements[1].Text.Content, "**Acknowledged** by Alice", "the record stays")
	require.Contains(t, c.Elements[1].Text.Content, "**Silenced** until")

	// Without an ID there is nothing a button could name.
	m, err = r.RenderWith(firing, rc, oncall.Mentions{}, Options{Card: &CardState{Durations: []string{"1h"}, Ack: ack}})
	require.NoError(t, err)
	acts, links := cardButtons(t, card(t, m))
	require.Empty(t, acts)
	require.Contains(t, links, "Silence")
	require.Contains(t, card(t, m).Elements[1].Text.Content, "Alice")
}

// Without a CardState, and for anything but a card, RenderWith is Render.
func TestRenderWithoutCardStateIsUnchanged(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
		rc := &config.Receiver{Name: "infra", Language: "en", MsgType: typ}
		want, err := r.Render(p, rc, oncall.Mentions{})
		require.NoError(t, err)
		got, err := r.RenderWith(p, rc, oncall.Mentions{}, Options{})
		require.NoError(t, err)
		require.Equal(t, indentJSON(t, want.Content), indentJSON(t, got.Content))
		if typ != config.MsgInteractive {
			got, err = r.RenderWith(p, rc, oncall.Mentions{}, Options{Card: withButtons(CardState{Ack: ack})})
			require.NoError(t, err)
			require.Equal(t, indentJSON(t, want.Content), indentJSON(t, got.Content), "only cards show the state")
		}
	}
}

// The link to Alertmanager's new-silence form is renamed beside the real
// Silence buttons, and gone once the incident is silenced.
func TestSilenceLinkBesideSilenceButtons(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	rc := &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}
	linksOf := func(st *CardState) map[string]string {
		m, err := r.RenderWith(p, rc, oncall.Mentions{}, Options{Card: st})
		require.NoError(t, err)
		_, links := cardButtons(t, card(t, m))
		return links
	}
	links := linksOf(withButtons(CardState{}))
	require.NotContains(t, links, "Silence")
	require.Contains(t, links["Custom silence"], "/#/silences/new?filter=")
	require.Contains(t, linksOf(&CardState{ID: testIncident}), "Silence", "no durations, no buttons: the link is the way to silence")
	links = linksOf(withButtons(CardState{Silence: silence}))
	require.NotContains(t, links, "Silence")
	require.NotContains(t, links, "Custom silence")
	require.Contains(t, links, "Alertmanager")
}

func TestStateLines(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	state := func(lang string, st CardState) string {
		rc := &config.Receiver{Name: "infra", Language: lang, MsgType: config.MsgInteractive, Location: shanghai(t)}
		m, err := r.RenderWith(p, rc, oncall.Mentions{}, Options{Card: withButtons(st)})
		require.NoError(t, err)
		c := card(t, m)
		require.Equal(t, "div", c.Elements[1].Tag)
		return c.Elements[1].Text.Content
	}
	require.Equal(t, "✅ **Acknowledged** by Alice at 07:10 (2026-11-25, CST)", state("en", CardState{Ack: ack}))
	require.Equal(t, "✅ **已认领**：Alice 于 07:10（2026-11-25，CST）", state("zh", CardState{Ack: ack}))
	require.Equal(t, "🔕 **Silenced** until 11:10 (2026-11-25, CST) by <at id=ou_bob></at> · "+
		"[view silence](http://127.0.0.1:19093/#/silences/8f2c1d3e-0b4a-4c5d-9e6f-7a8b9c0d1e2f)", state("en", CardState{Silence: silence}))
	require.Equal(t, "⏫ **Escalated** to step 2: <at id=ou_lead></at> <at id=ou_head></at>",
		state("en", CardState{Escalation: incident.Escalation{Step: 2}, EscalatedTo: []string{"ou_lead", "ou_head"}}))
	require.Equal(t, "⏫ **Escalated** to step 1", state("en", CardState{Escalation: incident.Escalation{Step: 1}}))

	// No zone is UTC; a silence without an ID, or an Alertmanager whose
	// URL would end a markdown link, is not linked.
	rc := &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}
	m, err := r.RenderWith(p, rc, oncall.Mentions{}, Options{Card: withButtons(CardState{Silence: &incident.Silence{Until: ackedAt, By: alice}})})
	require.NoError(t, err)
	require.Equal(t, "🔕 **Silenced** until 23:10 (2026-11-24, UTC) by Alice", card(t, m).Elements[1].Text.Content)
	require.Empty(t, SilenceURL("http://am.example/x)[y](z", "1"))
	require.Empty(t, SilenceURL("javascript:alert(1)", "1"))
	require.Equal(t, "http://am.example/a%5Fb/#/silences/1%7E", SilenceURL("http://am.example/a_b/", "1~"), "same URL, no markdown")
}

// Names and IDs from outside cannot become markup, on the card or in a
// reply; an ID that is no open_id is not put in a mention tag.
func TestIncidentNamesAreInert(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	evil := "<at id=all></at> **x** [y](https://evil.example)\n✅ **Acknowledged** by Boss"
	st := &CardState{
		ID: testIncident, Durations: []string{"<at id=all></at>"},
		Ack:         &incident.Ack{By: incident.Person{OpenID: "ou_a", Name: evil}, At: ackedAt},
		Silence:     &incident.Silence{ID: "x", Until: ackedAt, By: incident.Person{OpenID: "ou_x></at><at id=all"}},
		Escalation:  incident.Escalation{Step: 1},
		EscalatedTo: []string{"all", "ou_ok"},
	}
	m, err := r.RenderWith(p, &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}, oncall.Mentions{}, Options{Card: st})
	require.NoError(t, err)
	lines := card(t, m).Elements[1].Text.Content
	require.Equal(t, 3, strings.Count(lines, "\n")+1, "a name cannot add a line: %q", lines)
	require.Contains(t, lines, "&#60;at id=all&#62;&#60;/at&#62; &#42;&#42;x&#42;&#42; &#91;y&#93;(https://evil.example) ✅ &#42;&#42;Acknowledged&#42;&#42; by Boss")
	require.Contains(t, lines, "by ou&#95;x&#62;&#60;/at&#62;&#60;at id=all", "not an open_id: text")
	require.Contains(t, lines, "step 1: all <at id=ou_ok></at>")
	require.NotContains(t, strings.Replace(lines, "<at id=ou_ok></at>", "", 1), "<", "one mention, the real open_id's")

	st.Silence = nil
	m, err = r.RenderWith(p, &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}, oncall.Mentions{}, Options{Card: st})
	require.NoError(t, err)
	acts, _ := cardButtons(t, card(t, m))
	b, ok := acts["Silence ＜at id=all＞＜/at＞"]
	require.True(t, ok, "labels are neutralised as the title is: %v", acts)
	require.Equal(t, "<at id=all></at>", b.Value["duration"], "the value is the duration as written")

	reply, err := r.ActionReply(&config.Receiver{Language: "en"}, Action{Kind: ActionAck, By: incident.Person{OpenID: "ou_a", Name: `<at user_id="all"></at>`}})
	require.NoError(t, err)
	require.Equal(t, `✅ ＜at user_id="all"＞＜/at＞ acknowledged this incident.`, text(t, reply))
	reply, err = r.ActionReply(&config.Receiver{Language: "en"}, Action{Kind: ActionAck, By: incident.Person{OpenID: "ou_a"}})
	require.NoError(t, err)
	require.Equal(t, `✅ <at user_id="ou_a"></at> acknowledged this incident.`, text(t, reply), "no name: a mention, which Feishu shows by name")
	reply, err = r.ActionReply(&config.Receiver{Language: "en"}, Action{Kind: ActionUnsilence, By: incident.Person{OpenID: `ou_a"></at><at user_id="all`}, SilenceURL: "javascript:x"})
	require.NoError(t, err)
	require.Equal(t, `🔔 ou_a"＞＜/at＞＜at user_id="all expired the silence.`, text(t, reply))

	_, err = r.ActionReply(&config.Receiver{Language: "en"}, Action{Kind: "delete"})
	require.EqualError(t, err, `render: unknown action "delete"`)
}

// A huge group's card with every button and state line still fits
// Feishu's 30 KB, cut at an alert boundary, and keeps them all.
func TestHugeGroupCardWithStateFits(t *testing.T) {
	mentions := oncall.Mentions{IDs: []string{"ou_alice", "ou_bob"}, All: true}
	long := strings.Repeat("名", maxNameBytes)
	st := &CardState{
		ID: testIncident, Durations: []string{"30m", "1h", "4h", "24h", "168h"},
		Ack:         &incident.Ack{By: incident.Person{OpenID: "ou_a", Name: long}, At: ackedAt},
		Escalation:  incident.Escalation{Step: 3},
		EscalatedTo: []string{"ou_1", "ou_2", "ou_3", "ou_4", "ou_5", "ou_6", "ou_7", "ou_8"},
	}
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		t.Run(api, func(t *testing.T) {
			r := newRendererFor(t, api)
			m, err := r.RenderWith(hugePayload(400), &config.Receiver{Name: "x", Language: "zh", MsgType: config.MsgInteractive}, mentions, Options{Card: st})
			require.NoError(t, err)
			checkMentions(t, m, mentions)
			size := feishu.Footprint(api, m)
			require.LessOrEqual(t, size, MaxBytes(api, config.MsgInteractive))
			require.Greater(t, size, MaxBytes(api, config.MsgInteractive)*3/4, "the cut keeps as much as fits")
			c := card(t, m)
			require.True(t, utf8.ValidString(indentJSON(t, c)))
			require.Regexp(t, `… 另有 \d+ 条告警未显示。`, c.Elements[0].Text.Content)
			acts, _ := cardButtons(t, c)
			require.Len(t, acts, 5, "the silence buttons, whatever was cut")
			require.Contains(t, c.Elements[1].Text.Content, "第 3 级")
			require.Contains(t, c.Elements[1].Text.Content, "…", "a name is bounded")
		})
	}
}

func ExampleRenderer_ActionReply() {
	r, _ := New(nil, config.APIIMv1, nil)
	m, _ := r.ActionReply(&config.Receiver{Language: "en"}, Action{
		Kind: ActionSilence, By: incident.Person{OpenID: "ou_a", Name: "Alice"}, Duration: "4h",
		Until: time.Date(2026, 2, 10, 19, 4, 0, 0, time.UTC), SilenceURL: SilenceURL("https://am.example", "42"),
	})
	fmt.Println(m.Content.(feishu.Text).Text)
	// Output: 🔕 Alice silenced this for 4h, until 19:04 (2026-02-10, UTC): https://am.example/#/silences/42
}
