package actions

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The body of Feishu's documentation.
const docBody = `{"schema":"2.0",
 "header":{"event_id":"f7984f25108f8137722bb63cee927e66","token":"vt","create_time":"1603977298000000",
           "event_type":"card.action.trigger","tenant_key":"2df73991750c8ccf","app_id":"cli_xxx"},
 "event":{"operator":{"tenant_key":"t","user_id":"u1","open_id":"ou_xxx","union_id":"on_xxx"},
          "token":"c-295ee57216a5dc9de90fefd0aadb4b1d7d337bc9",
          "action":{"value":{"action":"ack","incident":"i1"},"tag":"button","option":"o","timezone":"Asia/Shanghai","name":"n","form_value":{},"input_value":"","checked":false},
          "host":"im_message",
          "context":{"open_message_id":"om_xxx","open_chat_id":"oc_xxx"}}}`

func TestDecodeCallback(t *testing.T) {
	cb, token, err := decodeCallback([]byte(docBody))
	require.NoError(t, err)
	require.Equal(t, "vt", token)
	require.Equal(t, Callback{
		EventID:   "f7984f25108f8137722bb63cee927e66",
		AppID:     "cli_xxx",
		Operator:  Operator{OpenID: "ou_xxx", UserID: "u1", UnionID: "on_xxx"},
		Value:     json.RawMessage(`{"action":"ack","incident":"i1"}`),
		Tag:       "button",
		MessageID: "om_xxx",
		ChatID:    "oc_xxx",
		Token:     "c-295ee57216a5dc9de90fefd0aadb4b1d7d337bc9",
		Created:   time.UnixMicro(1603977298000000),
	}, cb)

	for name, body := range map[string]string{
		"not JSON":        `{`,
		"old schema":      `{"schema":"1.0","header":{"event_id":"e","event_type":"card.action.trigger"},"event":{"operator":{"open_id":"ou"},"action":{}}}`,
		"other event":     `{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":{}}`,
		"no event_id":     `{"schema":"2.0","header":{"event_type":"card.action.trigger"},"event":{"operator":{"open_id":"ou"},"action":{}}}`,
		"no action":       `{"schema":"2.0","header":{"event_id":"e","event_type":"card.action.trigger"},"event":{"operator":{"open_id":"ou"}}}`,
		"no open_id":      `{"schema":"2.0","header":{"event_id":"e","event_type":"card.action.trigger"},"event":{"action":{}}}`,
		"string value":    `{"schema":"2.0","header":{"event_id":"e","event_type":"card.action.trigger"},"event":{"operator":{"open_id":"ou"},"action":{"value":"ack"}}}`,
		"bad create_time": `{"schema":"2.0","header":{"event_id":"e","create_time":"x","event_type":"card.action.trigger"},"event":{"operator":{"open_id":"ou"},"action":{}}}`,
	} {
		_, _, err := decodeCallback([]byte(body))
		require.Error(t, err, name)
	}
}

func TestEncodeAnswer(t *testing.T) {
	for _, tc := range []struct {
		a    Answer
		want string
	}{
		{Answer{}, `{}`},
		{Answer{Toast: &Toast{Type: ToastSuccess, Content: "done"}}, `{"toast":{"type":"success","content":"done"}}`},
		{Answer{Toast: &Toast{Type: ToastInfo, I18n: map[string]string{"zh_cn": "好", "en_us": "ok"}}}, `{"toast":{"type":"info","i18n":{"en_us":"ok","zh_cn":"好"}}}`},
		{Answer{Card: json.RawMessage(`{"elements":[]}`)}, `{"card":{"type":"raw","data":{"elements":[]}}}`},
	} {
		b, err := encodeAnswer(tc.a)
		require.NoError(t, err)
		require.JSONEq(t, tc.want, string(b))
	}
	_, err := encodeAnswer(Answer{Card: json.RawMessage(`{`)})
	require.Error(t, err)
}

func TestMergeClientConfig(t *testing.T) {
	c := DefaultClientConfig.merge(ClientConfig{PingInterval: 5})
	require.Equal(t, ClientConfig{ReconnectCount: -1, ReconnectInterval: 120, ReconnectNonce: 30, PingInterval: 5}, c)
	require.Equal(t, c, c.merge(ClientConfig{}), "zero fields keep what is in force")
	require.Equal(t, 3, c.merge(ClientConfig{ReconnectCount: 3}).ReconnectCount)
	_, ok := parseClientConfig([]byte(`{}`))
	require.False(t, ok)
	_, ok = parseClientConfig(nil)
	require.False(t, ok)
	got, ok := parseClientConfig([]byte(`{"PingInterval":7}`))
	require.True(t, ok)
	require.Equal(t, 7, got.PingInterval)
}

// The frame codec against bytes written out by hand from the proto.
func TestFrameWire(t *testing.T) {
	f := frame{SeqID: 1, LogID: 2, Service: 3, Method: frameData, Headers: []header{{"type", "event"}}, Payload: []byte("{}")}
	want := []byte{
		0x08, 1, 0x10, 2, 0x18, 3, 0x20, 1,
		0x2a, 13, 0x0a, 4, 't', 'y', 'p', 'e', 0x12, 5, 'e', 'v', 'e', 'n', 't',
		0x42, 2, '{', '}',
	}
	require.Equal(t, want, f.Marshal())
	got, err := unmarshalFrame(append(want, 0x4a, 1, 'x', 0x50, 7)) // LogIDNew, and an unknown field 10
	require.NoError(t, err)
	f.LogIDNew = "x"
	require.Equal(t, f, got)
	_, err = unmarshalFrame([]byte{0x08, 1})
	require.Error(t, err, "required fields missing")
	_, err = unmarshalFrame(want[:len(want)-1])
	require.Error(t, err, "truncated")

	neg := frame{Service: -1}
	got, err = unmarshalFrame(neg.Marshal())
	require.NoError(t, err)
	require.Equal(t, int32(-1), got.Service)
}
