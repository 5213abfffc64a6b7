package render

import (
	"testing"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// im/v1 text parses **bold** and [label](url); v4 text parses neither, so
// only im/v1 text changes a value that has them.
func TestIMTextValuesMakeNoLinkOrBold(t *testing.T) {
	const value = "[login](https://example.com) **x**"
	for api, want := range map[string]string{
		config.APIIMv1: "［login］(https://example.com) ＊＊x＊＊",
		config.APIv4:   value,
	} {
		r, err := New(nil, api, promslog.NewNopLogger())
		require.NoError(t, err)
		p := SamplePayload()
		p.CommonAnnotations["summary"] = value
		m, err := r.Render(p, &config.Receiver{Name: "x", Language: "en"}, oncall.Mentions{})
		require.NoError(t, err)
		require.Contains(t, m.Content.(feishu.Text).Text, "Summary: "+want, api)
	}
}

// Card markdown renders :KEY: as an emoji: the colons around a key in a
// value become entities, and a lone colon stays.
func TestMarkdownValuesMakeNoEmoji(t *testing.T) {
	for value, want := range map[string]string{
		":OK:":            "&#58;OK&#58;",
		"a :x_y: b":       "a &#58;x&#95;y&#58; b",
		"host-a:9100":     "host-a:9100",
		"at 23:01 :2022:": "at 23:01 &#58;2022&#58;",
		":a::b:":          "&#58;a&#58;&#58;b&#58;",
		"**:*:**":         "&#42;&#42;:&#42;:&#42;&#42;",
	} {
		require.Equal(t, want, markdownEscaper.value.Replace(value), value)
	}
	require.Equal(t, "&#58;x_y&#58;", markdownEscaper.name.Replace(":x_y:"))
}
