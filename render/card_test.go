package render

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

var capturedPayloads = []string{
	"firing-HighCPU-seq1-first-notification.json",
	"firing-HighCPU-seq2-new-alerts-added.json",
	"firing-HighCPU-seq3-some-alerts-resolved.json",
	"resolved-HighCPU-seq4-all-alerts-resolved.json",
	"firing-HighCPU-critical-max_alerts1.json",
	"resolved-HighCPU-critical-max_alerts1.json",
	"firing-DiskFull-default.json",
	"resolved-DiskFull-default.json",
}

func indentJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return buf.String()
}

// The default card and post of every captured payload, in both languages,
// as im/v1 sends them.
func TestGoldenCardAndPost(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	for _, payload := range capturedPayloads {
		for _, lang := range []string{"en", "zh"} {
			for _, typ := range []string{config.MsgInteractive, config.MsgPost} {
				suffix := map[string]string{config.MsgInteractive: "card", config.MsgPost: "post"}[typ]
				name := strings.TrimSuffix(payload, ".json") + "." + lang + "." + suffix + ".json"
				t.Run(name, func(t *testing.T) {
					m, err := r.Render(load(t, payload), &config.Receiver{Name: "infra", Language: lang, MsgType: typ}, oncall.Mentions{})
					require.NoError(t, err)
					require.Equal(t, typ, m.Type)
					requireGolden(t, name, indentJSON(t, m.Content))
				})
			}
		}
	}
}

func card(t *testing.T, m feishu.Message) feishu.Card {
	t.Helper()
	require.Equal(t, config.MsgInteractive, m.Type)
	return m.Content.(feishu.Card)
}

func buttons(c feishu.Card) map[string]string {
	out := map[string]string{}
	for _, e := range c.Elements {
		for _, b := range e.Actions {
			out[b.Text.Content] = b.URL
		}
	}
	return out
}

func TestCardShowsStateAndOffersActions(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	rc := &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}

	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	p.CommonAnnotations["runbook_url"] = "https://runbooks.example/HighCPU"
	m, err := r.Render(p, rc, oncall.Mentions{})
	require.NoError(t, err)
	c := card(t, m)
	require.Equal(t, "red", c.Header.Template, "severity critical")
	require.True(t, c.Config.UpdateMulti, "the root card can be updated later")
	b := buttons(c)
	require.Equal(t, "https://runbooks.example/HighCPU", b["Runbook"])
	require.Equal(t, p.Alerts[0].GeneratorURL, b["Source"])
	require.Contains(t, b["Alertmanager"], "/#/alerts?receiver=feishu-infra")
	silence, err := url.Parse(strings.Replace(b["Silence"], "/#/", "/", 1))
	require.NoError(t, err)
	require.Equal(t, "/silences/new", silence.Path)
	require.Equal(t, `{alertname="HighCPU"}`, silence.Query().Get("filter"), "a silence of the group's labels")

	p.Alerts[0].Labels["severity"], p.Alerts[1].Labels["severity"] = "warning", "warning"
	p.CommonAnnotations["runbook_url"] = "javascript:alert(1)"
	m, err = r.Render(p, rc, oncall.Mentions{})
	require.NoError(t, err)
	c = card(t, m)
	require.Equal(t, "orange", c.Header.Template)
	require.NotContains(t, buttons(c), "Runbook", "only web URLs become buttons")

	m, err = r.Render(load(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"), rc, oncall.Mentions{})
	require.NoError(t, err)
	c = card(t, m)
	require.Equal(t, "green", c.Header.Template)
	require.NotContains(t, buttons(c), "Silence", "nothing left to silence")
	require.Contains(t, c.Elements[0].Text.Content, "**All alerts resolved** at 2026-11-24 23:07:12 UTC")
}

// Alert content cannot form card markdown: no mention, tag, link or emphasis.
func TestCardNeutralisesMarkdown(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	evil := "<at id=all></at> **loud** [click](https://evil.example) &#60;at id=all&#62;"
	p.CommonAnnotations["summary"] = evil
	p.CommonLabels["team"] = evil
	p.GroupLabels["alertname"] = evil
	p.Alerts[0].Labels["instance"] = "<at email=boss@example.com></at>"
	m, err := r.Render(p, &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}, oncall.Mentions{})
	require.NoError(t, err)
	c := card(t, m)
	body := c.Elements[0].Text.Content
	require.NotContains(t, body, "<")
	require.NotContains(t, body, "[click]")
	require.NotContains(t, body, "**loud**")
	require.Contains(t, body, "&#60;at id=all&#62;&#60;/at&#62; &#42;&#42;loud&#42;&#42; &#91;click&#93;(https://evil.example) &#38;#60;at id=all&#38;#62;")
	require.Contains(t, body, "&#60;at email=boss@example.com&#62;")
	require.NotContains(t, c.Header.Title.Content, "<", "the plain-text title is neutralised too")
}

func TestPostCarriesPlainTextAndLinks(t *testing.T) {
	r := newRendererFor(t, config.APIv4)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	p.CommonAnnotations["summary"] = `<at user_id="all"></at>`
	m, err := r.Render(p, &config.Receiver{Name: "infra", Language: "zh", MsgType: config.MsgPost}, oncall.Mentions{})
	require.NoError(t, err)
	post := m.Content.(feishu.Post)
	require.Equal(t, "zh_cn", post.Locale)
	require.Equal(t, "[告警:2] HighCPU (node critical infra)", post.Title)
	var text []string
	for _, para := range post.Paragraphs {
		for _, n := range para {
			require.NotEqual(t, "at", n.Tag, "no mention from alert content")
			text = append(text, n.Text)
		}
	}
	joined := strings.Join(text, "\n")
	require.Contains(t, joined, "摘要：＜at user_id=\"all\"＞＜/at＞")
	last := post.Paragraphs[len(post.Paragraphs)-1]
	require.Equal(t, "a", last[0].Tag)
	require.Equal(t, "查看告警", last[0].Text)
}

// A huge group's card stays within Feishu's 30 KB card limit, cut at an
// alert boundary, whatever the API, and keeps its mentions whole.
func TestHugeGroupCardFits(t *testing.T) {
	mentions := oncall.Mentions{IDs: []string{"ou_alice", "ou_bob"}, All: true}
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		for _, typ := range []string{config.MsgInteractive, config.MsgPost} {
			t.Run(api+"/"+typ, func(t *testing.T) {
				r := newRendererFor(t, api)
				m, err := r.Render(hugePayload(400), &config.Receiver{Name: "x", Language: "en", MsgType: typ}, mentions)
				require.NoError(t, err)
				checkMentions(t, m, mentions)
				size := feishu.Footprint(api, m)
				require.LessOrEqual(t, size, MaxBytes(api, typ))
				require.Greater(t, size, MaxBytes(api, typ)*3/4, "the cut keeps as much as fits")
				out := indentJSON(t, m.Content)
				require.True(t, utf8.ValidString(out))
				require.Contains(t, out, "[FIRING:400] DiskFull")
				require.Regexp(t, `… and \d+ more alerts not shown\.`, out)
			})
		}
	}
	// im/v1 text may be five times larger: 300 alerts (about 130 KB) fit.
	r := newRendererFor(t, config.APIIMv1)
	m, err := r.Render(hugePayload(300), &config.Receiver{Name: "x", Language: "en", MsgType: config.MsgText}, oncall.Mentions{})
	require.NoError(t, err)
	require.LessOrEqual(t, feishu.Footprint(config.APIIMv1, m), MaxBytes(config.APIIMv1, config.MsgText))
	require.Greater(t, feishu.RequestSize(config.APIIMv1, m), MaxCardBytes)
	require.Equal(t, 300, strings.Count(text(t, m), "• "))
}

func TestTimesInTheReceiversZone(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	for _, typ := range []string{config.MsgText, config.MsgInteractive} {
		m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: typ, Location: shanghai}, oncall.Mentions{})
		require.NoError(t, err)
		out := indentJSON(t, m.Content)
		require.Contains(t, out, "since 2026-11-25 07:07:03 CST", "23:07:03 UTC is 07:07:03 the next day in Shanghai")
		require.NotContains(t, out, "UTC")
	}
}

// The example of a custom card body in docs/configuration.md ("Templates")
// works as it says.
func TestCardTemplateExample(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1, filepath.Join("..", "testdata", "templates", "card-example.tmpl"))
	rc := &config.Receiver{Name: "infra", Language: "en", MsgType: config.MsgInteractive}
	m, err := r.Render(load(t, "firing-HighCPU-seq1-first-notification.json"), rc, oncall.Mentions{})
	require.NoError(t, err)
	c := card(t, m)
	require.Equal(t, "**CPU usage above 90%**\n• host-a:9100 since 23:07 UTC\n• host-b:9100 since 23:07 UTC", c.Elements[0].Text.Content)
	require.Equal(t, "[FIRING:2] HighCPU (node critical infra)", c.Header.Title.Content, "the title is still the default")
	require.Contains(t, buttons(c), "Silence", "the frame is still the service's")

	m, err = r.Render(load(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"), rc, oncall.Mentions{})
	require.NoError(t, err)
	require.Equal(t, "**CPU usage above 90%**\nResolved at 23:07 UTC", card(t, m).Elements[0].Text.Content)
}

// A group label of kilobytes of invalid UTF-8 (each byte grows sixfold when
// encoded) once made the title alone exceed the limit, and the cutting of
// the body never ended. The title is capped; every type fits.
func TestHugeTitleFits(t *testing.T) {
	p := SamplePayload()
	huge := "&00&" + strings.Repeat("\xc0", 16000)
	p.GroupLabels["team"], p.CommonLabels["team"] = huge, huge
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			r := newRendererFor(t, api)
			m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: typ}, oncall.Mentions{IDs: []string{"ou_a"}})
			require.NoError(t, err, api+"/"+typ)
			require.LessOrEqual(t, feishu.Footprint(api, m), MaxBytes(api, typ), api+"/"+typ)
		}
	}
}

// A custom bot takes 20 KB bodies: a huge group is cut to fit that, for
// every type, and a later message's follow-up line survives the cut.
func TestHugeGroupFitsACustomBot(t *testing.T) {
	first := time.Date(2026, 11, 25, 8, 0, 3, 0, time.UTC)
	for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
		t.Run(typ, func(t *testing.T) {
			r := newRendererFor(t, config.APIIMv1)
			rc := &config.Receiver{Name: "bot", Language: "en", MsgType: typ, WebhookURL: "https://x/hook/y"}
			m, err := r.RenderAfter(hugePayload(400), rc, oncall.Mentions{IDs: []string{"ou_alice"}}, first)
			require.NoError(t, err)
			size := feishu.Footprint(feishu.APIBot, m)
			require.LessOrEqual(t, size, MaxBytes(feishu.APIBot, typ))
			require.Greater(t, size, MaxBytes(feishu.APIBot, typ)*3/4, "the cut keeps as much as fits")
			out := indentJSON(t, m.Content)
			require.Contains(t, out, "Follow-up to the message of 2026-11-25 08:00:03 UTC.")
			require.Regexp(t, `… and \d+ more alerts not shown\.`, out)
		})
	}
}

// A card cut at an alert boundary lists its alerts escaped for card
// markdown, through either API: a label of "**x**" or "&lt;" stays text.
func TestCutCardKeepsAlertsEscaped(t *testing.T) {
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		p := hugePayload(400)
		for i := range p.Alerts {
			p.Alerts[i].Labels["owner"] = "**loud** &lt;[x](https://evil.example)"
		}
		m, err := newRendererFor(t, api).Render(p, &config.Receiver{Name: "x", Language: "en", MsgType: config.MsgInteractive}, oncall.Mentions{})
		require.NoError(t, err)
		body := card(t, m).Elements[0].Text.Content
		require.Regexp(t, `… and \d+ more alerts not shown\.`, body, "cut")
		require.Contains(t, body, "owner=&#42;&#42;loud&#42;&#42; &#38;lt;&#91;x&#93;(https://evil.example)", api)
		require.NotContains(t, body, "**loud", api)
	}
}
