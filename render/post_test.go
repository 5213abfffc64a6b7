package render

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// A blank body line stays a paragraph of its own, and its text node
// carries the text Feishu marks required, "".
func TestPostBlankLineHasText(t *testing.T) {
	m, err := newRenderer(t).Render(SamplePayload(), &config.Receiver{Name: "x", Language: "en", MsgType: config.MsgPost},
		oncall.Mentions{IDs: []string{"ou_a"}})
	require.NoError(t, err)
	b, err := json.Marshal(m.Content.(feishu.Post).Paragraphs)
	require.NoError(t, err)
	require.Contains(t, string(b), `[{"tag":"text","text":""}]`)
	require.Contains(t, string(b), `{"tag":"at","user_id":"ou_a"}`)
}
