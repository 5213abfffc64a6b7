package feishu

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// imv1 sends through im/v1: a new message to a receive_id, a reply to a
// message, both idempotent by uuid, and cards updated in place.
type imv1 struct{ c *Client }

// IMv1 is the sender through im/v1. It is also a CardUpdater and a Buzzer.
func (c *Client) IMv1() Sender { return imv1{c} }

// Send delivers m, with the tenant token, once its target's slot has come.
// Every attempt carries m.UUID, so that Feishu keeps one message however
// many of them reached it.
func (s imv1) Send(ctx context.Context, m Message) (string, error) {
	defer s.c.observeSend(s.c.now())
	endpoint, path, req, err := newIMRequest(m)
	if err != nil {
		return "", err
	}
	var id string
	lost := false
	err = s.c.retry(ctx, endpoint, m.Target, func(tok string) (err error) {
		id, err = s.c.messageID(ctx, endpoint, http.MethodPost, path, tok, req)
		lost = lost || Unanswered(err)
		return err
	})
	var fe *Error
	if lost && m.UUID != "" && !tokenFailure(err) && errors.As(err, &fe) && fe.Err == nil {
		// The answer is to the uuid's second coming at least: Feishu's
		// for the message it already has, for all the service knows.
		fe.AfterLostAnswer = true
	}
	return id, err
}

type imCreateRequest struct {
	ReceiveID string `json:"receive_id"`
	MsgType   string `json:"msg_type"`
	Content   string `json:"content"`
	UUID      string `json:"uuid,omitempty"`
}

type imReplyRequest struct {
	MsgType string `json:"msg_type"`
	Content string `json:"content"`
	UUID    string `json:"uuid,omitempty"`
}

// newIMRequest is the call that sends m: a reply to m.RootID, whose path
// names the root and whose body no recipient, or else a new message to
// m.Target.
func newIMRequest(m Message) (endpoint, path string, body any, err error) {
	endpoint = EndpointCreate
	if m.RootID != "" {
		endpoint = EndpointReply
	}
	if len(m.UUID) > MaxUUIDLen {
		return "", "", nil, badRequest(endpoint, "uuid is longer than %d characters", MaxUUIDLen)
	}
	content, err := imContent(m.Content)
	if err != nil {
		return "", "", nil, badRequest(endpoint, "encode content: %v", err)
	}
	if m.RootID != "" {
		path = "/open-apis/im/v1/messages/" + url.PathEscape(m.RootID) + "/reply"
		return endpoint, path, imReplyRequest{MsgType: m.Type, Content: content, UUID: m.UUID}, nil
	}
	switch m.Target.Kind {
	case config.TargetChatID, config.TargetOpenID, config.TargetUserID, config.TargetEmail:
	default:
		return "", "", nil, badRequest(endpoint, "unknown target kind %q", m.Target.Kind)
	}
	path = "/open-apis/im/v1/messages?receive_id_type=" + m.Target.Kind
	return endpoint, path, imCreateRequest{ReceiveID: m.Target.ID, MsgType: m.Type, Content: content, UUID: m.UUID}, nil
}

// imContent is the content as im/v1 wants it: the JSON of the content
// object, a post without v4's wrapper, as a string.
func imContent(c any) (string, error) {
	if p, ok := c.(Post); ok {
		c = p.body()
	}
	b, err := marshal(c)
	return string(b), err
}

// UpdateCard replaces the card of an interactive message the app sent
// earlier, in place. Both the old and the new card must have
// config.update_multi set.
func (s imv1) UpdateCard(ctx context.Context, messageID string, card Card) error {
	content, err := imContent(card)
	if err != nil {
		return badRequest(EndpointUpdate, "encode content: %v", err)
	}
	path := "/open-apis/im/v1/messages/" + url.PathEscape(messageID)
	body := struct {
		Content string `json:"content"`
	}{content}
	// An update is bound by the app's limits only: it goes to a message,
	// not to a chat.
	return s.c.retry(ctx, EndpointUpdate, Target{}, func(tok string) error {
		return s.c.call(ctx, EndpointUpdate, http.MethodPatch, path, tok, body, nil)
	})
}
