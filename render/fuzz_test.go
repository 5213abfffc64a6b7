package render

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
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
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: typ})
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			switch c := m.Content.(type) {
			case feishu.Text:
				parts = []string{c.Text}
			case feishu.Post:
				parts = []string{c.Title}
				for _, para := range c.Paragraphs {
					for _, n := range para {
						if n.Tag == "at" {
							t.Fatalf("post has a mention: %+v", n)
						}
						parts = append(parts, n.Text)
					}
				}
			case feishu.Card:
				parts = []string{c.Header.Title.Content}
				body := c.Elements[0].Text.Content
				// The default card's own markup is ** around headings.
				own := strings.ReplaceAll(body, "**", "")
				if bad := strings.ContainsAny(entity.ReplaceAllString(own, ""), "*[]`~&"); bad {
					t.Fatalf("card markdown has markup from the payload: %q", body)
				}
				parts = append(parts, body)
			}
			for _, s := range parts {
				if strings.Contains(s, "<") {
					t.Fatalf("%s message has '<' from the payload: %q", typ, s)
				}
			}
		}
	})
}
