package feishu

import (
	"context"
	"net/http"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// v4Path is message/v4/send's path; Feishu answers its slashless form with
// a redirect.
const v4Path = "/open-apis/message/v4/send/"

// v4 sends through the legacy message/v4/send: one endpoint for new
// messages and replies, the recipient and root in the body, and no
// idempotency key.
type v4 struct{ c *Client }

// V4 is the sender through message/v4/send.
func (c *Client) V4() Sender { return v4{c} }

// Send delivers m, with the tenant token, once its target's slot has come.
// m.UUID is ignored: v4 has no such key.
func (s v4) Send(ctx context.Context, m Message) (string, error) {
	defer s.c.observeSend(s.c.now())
	req, err := newV4Request(m)
	if err != nil {
		return "", err
	}
	var id string
	err = s.c.retry(ctx, EndpointV4, m.Target, func(tok string) (err error) {
		id, err = s.c.messageID(ctx, EndpointV4, http.MethodPost, v4Path, tok, req)
		return err
	})
	return id, err
}

type v4Request struct {
	ChatID  string `json:"chat_id,omitempty"`
	OpenID  string `json:"open_id,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	Email   string `json:"email,omitempty"`
	RootID  string `json:"root_id,omitempty"`
	MsgType string `json:"msg_type"`
	Content any    `json:"content,omitempty"`
	Card    any    `json:"card,omitempty"`
}

// newV4Request is the body that sends m: the recipient in the field of its
// kind, and the content as v4Body places it.
func newV4Request(m Message) (v4Request, error) {
	req := v4Request{RootID: m.RootID, MsgType: m.Type}
	switch m.Target.Kind {
	case config.TargetChatID:
		req.ChatID = m.Target.ID
	case config.TargetOpenID:
		req.OpenID = m.Target.ID
	case config.TargetUserID:
		req.UserID = m.Target.ID
	case config.TargetEmail:
		req.Email = m.Target.ID
	default:
		return req, badRequest(EndpointV4, "unknown target kind %q", m.Target.Kind)
	}
	req.Content, req.Card = v4Body(m)
	return req, nil
}

// v4Body places m's content as message/v4/send (and a custom bot, which
// shares its shape) wants it: a card in its own field, as is; any other
// content in content, a post wrapped in {"post": ...}. One of the two is
// nil.
func v4Body(m Message) (content, card any) {
	if m.Type == config.MsgInteractive {
		return nil, m.Content
	}
	if p, ok := m.Content.(Post); ok {
		return map[string]any{"post": p.body()}, nil
	}
	return m.Content, nil
}
