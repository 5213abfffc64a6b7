package render

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// requireFastEqualsTemplates renders p's views, as Render makes them, by
// fastFuncs and by the template engine, and requires the same bytes.
// The languages and time zones are each of locs.
func requireFastEqualsTemplates(t testing.TB, r *Renderer, p *webhook.Payload, langs []string, locs ...*time.Location) {
	t.Helper()
	for _, lang := range langs {
		for _, loc := range locs {
			for _, e := range []escaper{textEscaper, imTextEscaper, markdownEscaper} {
				d := neutralised(p, lang, loc, e)
				for text, fast := range fastFuncs {
					want, err := r.executeTemplate("fast", text, d)
					require.NoError(t, err)
					require.Equal(t, want, fast(d), "%s, language %q", text, lang)
				}
			}
		}
	}
}

// variants are p as it may come: as is, with alerts cut ("and N more"),
// all resolved, without an external URL, with its alerts in other
// statuses and some without a start.
func variants(p *webhook.Payload) []*webhook.Payload {
	out := []*webhook.Payload{p}
	cp := func() *webhook.Payload {
		c := *p
		c.Alerts = append(template.Alerts(nil), p.Alerts...)
		return &c
	}
	for _, n := range []uint64{1, 7} {
		c := cp()
		c.TruncatedAlerts = n
		out = append(out, c)
	}
	c := cp()
	c.Status = "resolved"
	for i := range c.Alerts {
		c.Alerts[i].Status = "resolved"
		c.Alerts[i].EndsAt = c.Alerts[i].StartsAt.Add(time.Duration(i+1) * time.Minute)
	}
	out = append(out, c)
	c = cp()
	c.ExternalURL, c.Receiver = "", "a b&c/é"
	out = append(out, c)
	c = cp()
	for i := range c.Alerts {
		c.Alerts[i].Status = []string{"firing", "resolved", "pending"}[i%3]
		c.Alerts[i].GeneratorURL = ""
		if i%2 == 0 {
			c.Alerts[i].StartsAt = time.Time{}
		}
	}
	out = append(out, c)
	return out
}

// The fast path gives the templates' bytes for every captured payload, the
// golden inputs among them, the sample, and a group that must be cut.
func TestFastPathEqualsTemplates(t *testing.T) {
	r := newRenderer(t)
	require.True(t, fastWrittenFor(), "templates/feishu.tmpl changed: bring fast.go in line with it, then fastTemplatesSum")
	require.True(t, r.fast)
	files, err := filepath.Glob(filepath.Join("..", "testdata", "alertmanager", "*.json"))
	require.NoError(t, err)
	var payloads []*webhook.Payload
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		if p, err := webhook.DecodeBytes(body); err == nil {
			payloads = append(payloads, p)
		}
	}
	require.GreaterOrEqual(t, len(payloads), len(capturedPayloads))
	payloads = append(payloads, SamplePayload(), hugePayload(40))
	for _, seed := range fuzzSeeds(t) {
		payloads = append(payloads, fastFuzzPayload(seed[0], seed[1]))
	}
	for _, p := range payloads {
		for _, v := range variants(p) {
			requireFastEqualsTemplates(t, r, v, []string{"en", "zh", "", "fr"}, time.UTC, shanghai(t))
		}
	}
}

// fuzzSeeds are the seeds and corpus of both render fuzz targets.
func fuzzSeeds(t testing.TB) [][2]string {
	seeds := [][2]string{
		{`<at user_id="all"></at>`, "owner"},
		{"**loud** [x](https://evil.example) `code` ~~s~~ _i_", "runbook_url"},
		{"&#60;at id=all&#62; &lt;", "a<b"},
		{"\xff\xfe", "描述"},
		{"Alice\n✅ **Acknowledged** by Boss", "ou_x></at><at id=all"},
		{":OK: x:Fire:y :2022: host:9100", "a:b"},
		{"", ""}, {"x", "alertname"}, {"warning", "severity"}, {"s", "summary"}, {"d", "description"},
		{"a'b", "a*"}, {"", "team"},
	}
	for _, target := range []string{"FuzzNoMarkupFromPayload", "FuzzFastPathEqualsTemplates"} {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		require.NoError(t, err)
		for _, f := range files {
			seeds = append(seeds, readCorpusEntry(t, f))
		}
	}
	return seeds
}

// readCorpusEntry reads a corpus file of two strings.
func readCorpusEntry(t testing.TB, path string) [2]string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "string("); ok {
			v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
			require.NoError(t, err, path)
			args = append(args, v)
		}
	}
	require.NoError(t, sc.Err())
	require.Len(t, args, 2, path)
	return [2]string{args[0], args[1]}
}

// fastFuzzPayload is fuzzPayload with value and name also in the group's
// labels and the parts of the payload only the fast path's text reads.
func fastFuzzPayload(value, name string) *webhook.Payload {
	p := fuzzPayload(value, name)
	p.GroupLabels[name] = value
	p.CommonLabels[name] = value
	p.CommonAnnotations["description"] = value
	p.Receiver = value
	p.ExternalURL = "http://am.example/" + value
	p.Alerts[1].Labels[name] = value + value
	p.Alerts[1].Annotations["summary"] = value
	p.Alerts[0].GeneratorURL = value
	return p
}

// FuzzFastPathEqualsTemplates puts arbitrary text in labels, annotations,
// their names and the group's other strings, and requires the fast path
// to give the templates' bytes.
func FuzzFastPathEqualsTemplates(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed[0], seed[1])
	}
	r := newRenderer(f)
	f.Fuzz(func(t *testing.T, value, name string) {
		for _, p := range variants(fastFuzzPayload(value, name)) {
			requireFastEqualsTemplates(t, r, p, []string{"en", "zh"}, time.UTC)
		}
	})
}

// A template file that redefines any template the fast path stands for
// turns it off, so that the engine renders the file's definition.
func TestRedefinedDefaultsTurnTheFastPathOff(t *testing.T) {
	for _, name := range fastNames {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.tmpl"), []byte(
				`{{ define "`+name+`" }}MINE{{ end }}`), 0o644))
			r := newRenderer(t, filepath.Join(dir, "*.tmpl"))
			require.False(t, r.fast)
			rc := &config.Receiver{Name: "x", Language: "en", MsgType: config.MsgInteractive}
			if strings.Contains(name, ".zh.") {
				rc.Language = "zh"
			}
			m, err := r.Render(SamplePayload(), rc, oncall.Mentions{})
			require.NoError(t, err)
			if name != "__alertmanagerURL" && !strings.HasSuffix(name, ".text") {
				require.Contains(t, card(t, m).Header.Title.Content+card(t, m).Elements[0].Text.Content, "MINE")
			}
		})
	}
	// A file that defines other names leaves it on.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.tmpl"), []byte(`{{ define "mine" }}x{{ end }}`), 0o644))
	require.True(t, newRenderer(t, filepath.Join(dir, "*.tmpl")).fast)
}
