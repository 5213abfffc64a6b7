package feishu_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
)

// A button that acts carries its value and confirmation, and no url; a
// link button encodes as it always did.
func TestCardButtonsEncoding(t *testing.T) {
	plain := func(s string) feishu.CardText { return feishu.CardText{Tag: "plain_text", Content: s} }
	card := testCard("[FIRING:1] X", true)
	card.Elements = append(card.Elements, feishu.CardElement{Tag: "action", Actions: []feishu.CardButton{{
		Tag: "button", Type: "default", Text: plain("Silence 4h"),
		Value:   map[string]string{"action": "silence", "duration": "4h", "incident": "c.1"},
		Confirm: &feishu.CardConfirm{Title: plain("Silence 4h"), Text: plain("Silence this group for 4h?")},
	}}})
	m := feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: "oc_1"}, Type: config.MsgInteractive, Content: card}
	_, body, err := feishu.Preview(config.APIIMv1, m)
	require.NoError(t, err)
	var req struct{ Content string }
	require.NoError(t, json.Unmarshal(body, &req))
	var got struct {
		Elements []struct {
			Actions []map[string]json.RawMessage `json:"actions"`
		} `json:"elements"`
	}
	require.NoError(t, json.Unmarshal([]byte(req.Content), &got))
	link, act := got.Elements[1].Actions[0], got.Elements[2].Actions[0]
	require.JSONEq(t, `"http://am.example/#/alerts"`, string(link["url"]))
	require.NotContains(t, link, "value")
	require.NotContains(t, link, "confirm")
	require.NotContains(t, act, "url")
	require.JSONEq(t, `{"action":"silence","duration":"4h","incident":"c.1"}`, string(act["value"]))
	require.JSONEq(t, `{"title":{"tag":"plain_text","content":"Silence 4h"},"text":{"tag":"plain_text","content":"Silence this group for 4h?"}}`, string(act["confirm"]))
}
