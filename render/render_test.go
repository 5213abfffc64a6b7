package render

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// newRenderer renders for v4, whose limits are the tightest.
func newRenderer(t testing.TB, globs ...string) *Renderer {
	t.Helper()
	return newRendererFor(t, config.APIv4, globs...)
}

func newRendererFor(t testing.TB, api string, globs ...string) *Renderer {
	t.Helper()
	r, err := New(globs, api, promslog.NewNopLogger())
	require.NoError(t, err)
	return r
}

func load(t testing.TB, name string) *webhook.Payload {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "alertmanager", name))
	require.NoError(t, err)
	defer f.Close()
	p, err := webhook.Decode(f)
	require.NoError(t, err)
	return p
}

func text(t testing.TB, m feishu.Message) string {
	t.Helper()
	require.Equal(t, config.MsgText, m.Type)
	return m.Content.(feishu.Text).Text
}

func TestGolden(t *testing.T) {
	r := newRenderer(t)
	for _, payload := range capturedPayloads {
		for _, lang := range []string{"en", "zh"} {
			name := strings.TrimSuffix(payload, ".json") + "." + lang + ".txt"
			t.Run(name, func(t *testing.T) {
				m, err := r.Render(load(t, payload), &config.Receiver{Name: "infra", Language: lang}, oncall.Mentions{})
				require.NoError(t, err)
				requireGolden(t, name, text(t, m))
			})
		}
	}
}

// requireGolden compares got with testdata/golden/name, or rewrites that
// file with -update.
func requireGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("..", "testdata", "golden", name)
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

func TestMessagesSayWhatHappened(t *testing.T) {
	r := newRenderer(t)
	render := func(name string) string {
		m, err := r.Render(load(t, name), &config.Receiver{Name: "infra", Language: "en"}, oncall.Mentions{})
		require.NoError(t, err)
		return text(t, m)
	}
	first := render("firing-HighCPU-seq1-first-notification.json")
	require.Contains(t, first, "[FIRING:2] HighCPU")
	require.Contains(t, first, "Severity: critical")
	require.Contains(t, first, "Summary: CPU usage above 90%")
	require.Contains(t, first, "instance=host-a:9100, since 2026-11-24 23:07:03 UTC")
	require.Contains(t, first, "http://127.0.0.1:19093/#/alerts?receiver=feishu-infra")

	some := render("firing-HighCPU-seq3-some-alerts-resolved.json")
	require.Contains(t, some, "1 resolved, 2 still firing.")
	require.Regexp(t, `Resolved \(1\):\n• instance=host-a:9100, .* → 2026-11-24 23:07:09 UTC`, some)

	resolved := render("resolved-HighCPU-seq4-all-alerts-resolved.json")
	require.Contains(t, resolved, "[RESOLVED] HighCPU")
	require.Contains(t, resolved, "All alerts resolved.")
	require.NotEqual(t, first, resolved)

	truncated := render("firing-HighCPU-critical-max_alerts1.json")
	require.Contains(t, truncated, "… and 1 more alert not shown.")
	require.Contains(t, truncated, "Source: http://prometheus.example/graph?g0.expr=up")
}

// Alert content cannot create a mention or any other tag, whatever it holds.
func TestPayloadCannotInjectMarkup(t *testing.T) {
	r := newRenderer(t)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	evil := `<at user_id="all">everyone</at> <at user_id="ou_x"></at>`
	p.CommonAnnotations["summary"] = evil
	p.CommonLabels["severity"] = evil
	p.Alerts[0].Labels["instance"] = evil
	p.Alerts[0].Annotations["summary"] = "<b>bold</b>"
	p.ExternalURL = `http://am"><at user_id="all">`
	m, err := r.Render(p, &config.Receiver{Name: "infra", Language: "en"}, oncall.Mentions{})
	require.NoError(t, err)
	out := text(t, m)
	require.NotContains(t, out, "<")
	require.NotContains(t, out, ">")
	require.Contains(t, out, `＜at user_id="all"＞everyone＜/at＞`, "the text stays readable")
}

// A user template that uses routeLabels must not execute values from the
// request as templates.
func TestRouteLabelsAreNotExecuted(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.tmpl"),
		[]byte(`{{ define "custom" }}route={{ .RouteLabels.team }}{{ end }}`), 0o644))
	r := newRenderer(t, filepath.Join(dir, "*.tmpl"))
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	p.RouteLabels = template.KV{"team": `{{ "injected" | toUpper }}`}
	m, err := r.Render(p, &config.Receiver{Name: "x", Templates: config.ReceiverTemplates{Text: `{{ template "custom" . }}`}}, oncall.Mentions{})
	require.NoError(t, err)
	require.Contains(t, text(t, m), `route={{ "injected" | toUpper }}`)
	require.NotContains(t, text(t, m), "INJECTED")
}

func TestUserTemplatesOverrideDefaults(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.tmpl"), []byte(
		`{{ define "feishu.en.title" }}ALERT {{ .CommonLabels.alertname }}{{ end }}`), 0o644))
	r := newRenderer(t, filepath.Join(dir, "*.tmpl"), filepath.Join(dir, "none-*.tmpl"))
	m, err := r.Render(load(t, "firing-HighCPU-seq1-first-notification.json"), &config.Receiver{Name: "x", Language: "en"}, oncall.Mentions{})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(text(t, m), "ALERT HighCPU\n"), text(t, m))

	// Per receiver templates.
	m, err = r.Render(load(t, "firing-HighCPU-seq1-first-notification.json"), &config.Receiver{Name: "x", Language: "en",
		Templates: config.ReceiverTemplates{Title: `{{ .Status }}`, Text: `{{ len .Alerts }} alerts`}}, oncall.Mentions{})
	require.NoError(t, err)
	require.Equal(t, "firing\n2 alerts", text(t, m))
}

func TestBrokenTemplateIsAnError(t *testing.T) {
	r := newRenderer(t)
	err := r.Check([]*config.Receiver{{Name: "x", Templates: config.ReceiverTemplates{Text: `{{ .NoSuchField }}`}}})
	require.ErrorContains(t, err, `receiver "x": render text`)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.tmpl"), []byte(`{{ define "x" }}{{ end`), 0o644))
	_, err = New([]string{filepath.Join(dir, "*.tmpl")}, config.APIv4, promslog.NewNopLogger())
	require.Error(t, err)
}

// A huge group is cut at an alert boundary to fit Feishu's limit, with the
// count of what was left out, and never in the middle of a character.
func TestHugeGroupIsCutAtAnAlertBoundary(t *testing.T) {
	r := newRenderer(t)
	p := hugePayload(400)
	m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en"}, oncall.Mentions{})
	require.NoError(t, err)
	out := text(t, m)
	require.LessOrEqual(t, feishu.RequestSize(config.APIv4, m), MaxCardBytes, "v4 keeps everything under 30 KB")
	require.True(t, utf8.ValidString(out))
	require.True(t, strings.HasPrefix(out, "[FIRING:400] DiskFull"), "the title counts every alert")
	shown := strings.Count(out, "• ")
	require.Greater(t, shown, 10)
	require.Contains(t, out, fmt.Sprintf("… and %d more alerts not shown.", 400-shown), "the cut is counted")
	// Every alert shown is whole: the last one shown has its summary.
	last := out[strings.LastIndex(out, "• "):]
	require.Contains(t, last, "使用率超过 95%，\n", "the last alert is whole")
}

func TestHugeCommonAnnotationIsCut(t *testing.T) {
	r := newRenderer(t)
	p := hugePayload(2)
	p.CommonAnnotations["description"] = strings.Repeat("磁盘已满", 20000)
	m, err := r.Render(p, &config.Receiver{Name: "x", Language: "zh"}, oncall.Mentions{})
	require.NoError(t, err)
	require.LessOrEqual(t, feishu.Footprint(config.APIv4, m), MaxBytes(config.APIv4, config.MsgText))
	out := text(t, m)
	require.True(t, utf8.ValidString(out))
	require.True(t, strings.HasSuffix(out, "…\n（部分内容超出飞书的大小限制，已截去）"), "the cut is marked, and said below")
}

func hugePayload(n int) *webhook.Payload {
	p := SamplePayload()
	p.GroupLabels = template.KV{"alertname": "DiskFull"}
	p.CommonLabels = template.KV{"alertname": "DiskFull"}
	p.CommonAnnotations = template.KV{}
	p.Alerts = nil
	start := time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)
	for i := range n {
		p.Alerts = append(p.Alerts, template.Alert{
			Status:      "firing",
			Labels:      template.KV{"alertname": "DiskFull", "instance": fmt.Sprintf("db-%03d:9100", i)},
			Annotations: template.KV{"summary": strings.Repeat("磁盘 /var/lib/postgres 使用率超过 95%，", 8)},
			StartsAt:    start,
			Fingerprint: fmt.Sprintf("%016x", i),
		})
	}
	return p
}

// An alert without startsAt (the zero time) is listed without when it
// started, rather than "since 0001-01-01", in every type and language; a
// resolved one says when it ended.
func TestAlertWithoutStartsAt(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	for _, name := range []string{"firing-HighCPU-seq1-first-notification.json", "firing-HighCPU-seq3-some-alerts-resolved.json"} {
		p := load(t, name)
		for i := range p.Alerts {
			p.Alerts[i].StartsAt = time.Time{}
		}
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			for _, lang := range []string{"en", "zh"} {
				m, err := r.Render(p, &config.Receiver{Name: "infra", Language: lang, MsgType: typ}, oncall.Mentions{})
				require.NoError(t, err)
				out := indentJSON(t, m.Content)
				require.NotContains(t, out, "0001", "%s %s %s", name, typ, lang)
				require.NotContains(t, out, "since", "%s %s %s", name, typ, lang)
				require.NotContains(t, out, "开始于", "%s %s %s", name, typ, lang)
				require.Contains(t, out, "host-b:9100", "the alert is still listed")
				if strings.Contains(name, "resolved") {
					require.Regexp(t, `ended 2026-11-24 23:07:09 UTC|结束于 2026-11-24 23:07:09 UTC`, out)
				}
			}
		}
	}
}
