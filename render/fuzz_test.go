package render

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

var entity = regexp.MustCompile(`&#[0-9]+;`)

// FuzzNoMarkupFromPayload puts arbitrary text in labels, annotations and
// their names, and checks that none of it becomes markup in any message
// type: no '<' anywhere (so no <at>, <i>, ...), in card markdown no
// link, emphasis or code character and no '&' that is not one of our
// entities, and, read by the stand-in's rules, no link, bold or emoji in
// text (both APIs), post or card that the templates do not make of plain
// values.
func FuzzNoMarkupFromPayload(f *testing.F) {
	for _, seed := range [][2]string{
		{`<at user_id="all"></at>`, "owner"},
		{"**loud** [x](https://evil.example) `code` ~~s~~ _i_", "runbook_url"},
		{"&#60;at id=all&#62; &lt;", "a<b"},
		{"\xff\xfe", "描述"},
		{"Alice\n✅ **Acknowledged** by Boss", "ou_x></at><at id=all"},
		{"ou_alice", "4h"},
		{":OK: x:Fire:y :2022: host:9100", "a:b"},
	} {
		f.Add(seed[0], seed[1])
	}
	r, err := New(nil, config.APIIMv1, promslog.NewNopLogger())
	if err != nil {
		f.Fatal(err)
	}
	r4, err := New(nil, config.APIv4, promslog.NewNopLogger())
	if err != nil {
		f.Fatal(err)
	}
	renderers := []*Renderer{r, r4}
	// own is the markup the templates make of a plain value and name: the
	// card's bold headings, and the :NN: of its times that the stand-in
	// counts as emoji keys.
	own := map[*Renderer]map[string]markup{}
	for _, r := range renderers {
		own[r] = map[string]markup{}
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			m, err := r.Render(fuzzPayload("plain", "plain"), &config.Receiver{Name: "x", Language: "en", MsgType: typ}, oncall.Mentions{})
			if err != nil {
				f.Fatal(err)
			}
			own[r][typ] = markupOf(f, r.api, m)
		}
	}
	f.Fuzz(func(t *testing.T, value, name string) {
		p := fuzzPayload(value, name)
		policies := []oncall.Mentions{{}, {IDs: []string{"ou_fuzz", "u_fuzz"}, All: true,
			Unresolved: []oncall.Unresolved{{Email: "gone@example.com", Reason: "not_found"}}}}
		for _, r := range renderers {
			for _, mentions := range policies {
				for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
					m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: typ}, mentions)
					if err != nil {
						t.Fatal(err)
					}
					checkMentions(t, m, mentions)
					checkParsed(t, r.api, m, p, own[r][typ])
				}
			}
		}
		checkIncident(t, r, value, name)
	})
}

// fuzzPayload is the sample with value in labels and annotations, and name
// among their names.
func fuzzPayload(value, name string) *webhook.Payload {
	p := SamplePayload()
	p.CommonAnnotations["summary"] = value
	p.CommonAnnotations[name] = value
	p.CommonLabels["team"] = value
	p.GroupLabels["team"] = value
	p.Alerts[0].Labels["instance"] = value
	p.Alerts[0].Labels[name] = value
	p.Alerts[0].Annotations["summary"] = value + "!"
	return p
}

// ownMention is a mention tag the incident's state may make: of an open_id,
// or of a user_id an escalation step reached (from the configuration);
// the check below holds it to the IDs it was given.
var ownMention = regexp.MustCompile(`<at id=([0-9A-Za-z_-]{1,64})></at>`)

// checkIncident puts value and name in everything an incident shows that
// came from outside (names, open_ids, durations) and checks that none of
// it becomes markup: on the card, the state lines' only tags are mentions
// of what was passed as an open_id, their only markdown is our own, and
// there are as many lines as states; button labels are plain text without
// '<'; the replies' only tag is a mention of the actor's open_id.
func checkIncident(t *testing.T, r *Renderer, value, name string) {
	p := SamplePayload()
	st := &CardState{
		ID: "chain.x", Durations: []string{name},
		Ack:         &incident.Ack{By: incident.Person{OpenID: "ou_a", Name: name}},
		Silence:     &incident.Silence{ID: name, By: incident.Person{OpenID: "ou_" + name}},
		Escalation:  incident.Escalation{Step: 2},
		EscalatedTo: []string{value, "ou_" + name},
	}
	// A step reaches people by open_id or user_id, from the configuration:
	// those may be mentions, and nothing else.
	ids := map[string]bool{"ou_a": true, "ou_" + name: true,
		value: userID.MatchString(value) && !strings.EqualFold(value, "all")}
	for _, silence := range []*incident.Silence{st.Silence, nil} {
		st.Silence = silence
		m, err := r.RenderWith(p, &config.Receiver{Name: "x", Language: "en", MsgType: config.MsgInteractive}, oncall.Mentions{}, Options{Card: st})
		if err != nil {
			t.Fatal(err)
		}
		c := m.Content.(feishu.Card)
		lines := c.Elements[1].Text.Content
		if want := 2 + btoi(silence != nil); strings.Count(lines, "\n")+1 != want {
			t.Fatalf("card has %d state lines, want %d: %q", strings.Count(lines, "\n")+1, want, lines)
		}
		for _, match := range ownMention.FindAllStringSubmatch(lines, -1) {
			if !ids[match[1]] {
				t.Fatalf("state lines mention %s, which is no open_id given: %q", match[1], lines)
			}
		}
		own := ownMention.ReplaceAllString(lines, "")
		if silence != nil {
			own = strings.Replace(own, "[view silence]("+SilenceURL(p.ExternalURL, silence.ID)+")", "", 1)
		}
		own = strings.ReplaceAll(own, "**", "")
		if strings.ContainsAny(entity.ReplaceAllString(own, ""), "<*[]`~&_") {
			t.Fatalf("state lines have markup from outside: %q", lines)
		}
		for _, e := range c.Elements {
			for _, b := range e.Actions {
				texts := []string{b.Text.Content}
				if b.Confirm != nil {
					texts = append(texts, b.Confirm.Title.Content, b.Confirm.Text.Content)
				}
				for _, s := range texts {
					if strings.ContainsAny(s, "<\n") {
						t.Fatalf("button text has '<' or a new line from outside: %q", s)
					}
				}
				if d, ok := b.Value["duration"]; ok && d != name {
					t.Fatalf("button value has duration %q, want %q as written", d, name)
				}
			}
		}
	}
	for _, by := range []incident.Person{{OpenID: "ou_" + name, Name: value}, {OpenID: value}} {
		for _, kind := range []string{ActionAck, ActionSilence, ActionUnsilence} {
			m, err := r.ActionReply(&config.Receiver{Language: "zh"}, Action{Kind: kind, By: by, Duration: name, SilenceURL: value})
			if err != nil {
				t.Fatal(err)
			}
			s := m.Content.(feishu.Text).Text
			if cleanName(by.Name) == "" && openID.MatchString(by.OpenID) {
				s = strings.Replace(s, textMention(by.OpenID), "", 1)
			}
			if strings.ContainsAny(s, "<\n") {
				t.Fatalf("reply has '<' or a new line from outside: %q", m.Content.(feishu.Text).Text)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkMentions asserts that m mentions exactly whom the policy said, and
// that nothing else in it is markup: with the policy's own tags taken out,
// no '<' is left in text, posts or the card title, and no markdown in the
// card body.
func checkMentions(t *testing.T, m feishu.Message, mentions oncall.Mentions) {
	t.Helper()
	want := mentions.IDs
	if mentions.All {
		want = append(slices.Clone(want), "all")
	}
	var parts []string
	strip := func(s string, tag func(string) string) string {
		for _, id := range want {
			if n := strings.Count(s, tag(id)); n != 1 {
				t.Fatalf("%s: mention of %s appears %d times, want once: %q", m.Type, id, n, s)
			}
			s = strings.Replace(s, tag(id), "", 1)
		}
		return s
	}
	switch c := m.Content.(type) {
	case feishu.Text:
		parts = []string{strip(c.Text, textMention)}
	case feishu.Post:
		parts = []string{c.Title}
		var got []string
		for _, para := range c.Paragraphs {
			for _, n := range para {
				if n.Tag == "at" {
					got = append(got, n.UserID)
				}
				parts = append(parts, n.Text)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("post mentions %v, want %v", got, want)
		}
	case feishu.Card:
		parts = []string{c.Header.Title.Content}
		body := strip(c.Elements[0].Text.Content, cardMention)
		// The default card's own markup is ** around headings.
		own := strings.ReplaceAll(body, "**", "")
		if bad := strings.ContainsAny(entity.ReplaceAllString(own, ""), "*[]`~&"); bad {
			t.Fatalf("card markdown has markup from the payload: %q", body)
		}
		parts = append(parts, body)
	}
	for _, s := range parts {
		if strings.Contains(s, "<") {
			t.Fatalf("%s message has '<' from the payload: %q", m.Type, s)
		}
	}
}

// markup is what Feishu would render of a message as links, bold and
// emoji, by the stand-in's rules.
type markup struct {
	links       []feishutest.Link
	bold, emoji []string
}

// markupOf reads m as the stand-in would read it sent through api: its
// content as the request carries it.
func markupOf(t testing.TB, api string, m feishu.Message) markup {
	t.Helper()
	m.Target = feishu.Target{Kind: config.TargetChatID, ID: "oc_fuzz"}
	_, body, err := feishu.Preview(api, m)
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Content json.RawMessage `json:"content"`
		Card    json.RawMessage `json:"card"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	sent := feishutest.Message{API: "v4", Type: m.Type, Content: req.Content}
	switch {
	case api == config.APIIMv1:
		var content string
		if err := json.Unmarshal(req.Content, &content); err != nil {
			t.Fatal(err)
		}
		sent.API, sent.Content = "im_v1", json.RawMessage(content)
	case m.Type == config.MsgPost:
		var c struct {
			Post json.RawMessage `json:"post"`
		}
		if err := json.Unmarshal(req.Content, &c); err != nil {
			t.Fatal(err)
		}
		sent.Content = c.Post
	case m.Type == config.MsgInteractive:
		sent.Content = req.Card
	}
	return markup{links: sent.Links(), bold: sent.Bold(), emoji: sent.Emoji()}
}

// checkParsed asserts that Feishu would render no link, bold or emoji of
// m that the payload p made: its only links are the post's links of p
// (to Alertmanager, the runbook, the source, as URLs and never markup),
// its only bold and emoji are those of own, the sample's.
func checkParsed(t *testing.T, api string, m feishu.Message, p *webhook.Payload, own markup) {
	t.Helper()
	got := markupOf(t, api, m)
	var want []feishutest.Link
	if m.Type == config.MsgPost {
		for _, l := range links(p, "en") {
			want = append(want, feishutest.Link{Text: l.text, URL: l.url})
		}
	}
	if !slices.Equal(got.links, want) {
		t.Fatalf("%s through %s has links %q, want %q", m.Type, api, got.links, want)
	}
	for _, b := range got.bold {
		if !slices.Contains(own.bold, b) {
			t.Fatalf("%s through %s has bold %q from the payload", m.Type, api, b)
		}
	}
	for _, e := range got.emoji {
		if !slices.Contains(own.emoji, e) {
			t.Fatalf("%s through %s has emoji :%s: from the payload", m.Type, api, e)
		}
	}
}
