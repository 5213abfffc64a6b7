package render

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

var entity = regexp.MustCompile(`&#[0-9]+;`)

// FuzzNoMarkupFromPayload puts arbitrary text in labels, annotations and
// their names, and checks that none of it becomes markup in any message
// type: no '<' anywhere (so no <at>, <i>, ...), and in card markdown no
// link, emphasis or code character and no '&' that is not one of our
// entities.
func FuzzNoMarkupFromPayload(f *testing.F) {
	for _, seed := range [][2]string{
		{`<at user_id="all"></at>`, "owner"},
		{"**loud** [x](https://evil.example) `code` ~~s~~ _i_", "runbook_url"},
		{"&#60;at id=all&#62; &lt;", "a<b"},
		{"\xff\xfe", "描述"},
	} {
		f.Add(seed[0], seed[1])
	}
	r, err := New(nil, config.APIIMv1, promslog.NewNopLogger())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value, name string) {
		p := SamplePayload()
		p.CommonAnnotations["summary"] = value
		p.CommonAnnotations[name] = value
		p.CommonLabels["team"] = value
		p.GroupLabels["team"] = value
		p.Alerts[0].Labels["instance"] = value
		p.Alerts[0].Labels[name] = value
		p.Alerts[0].Annotations["summary"] = value + "!"
		policies := []oncall.Mentions{{}, {IDs: []string{"ou_fuzz", "u_fuzz"}, All: true,
			Unresolved: []oncall.Unresolved{{Email: "gone@example.com", Reason: "not_found"}}}}
		for _, mentions := range policies {
			for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
				m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: typ}, mentions)
				if err != nil {
					t.Fatal(err)
				}
				checkMentions(t, m, mentions)
			}
		}
	})
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
