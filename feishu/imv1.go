package feishu

import (
	"context"
	"net/http"
	"net/url"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

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

// sendIM creates a message, or replies to m.RootID, through im/v1.
func (c *Client) sendIM(ctx context.Context, tok string, m Message) (string, error) {
	endpoint := c.endpoint(m)
	if len(m.UUID) > MaxUUIDLen {
		return "", badRequest(endpoint, "uuid is longer than %d characters", MaxUUIDLen)
	}
	content, err := imContent(m.Content)
	if err != nil {
		return "", badRequest(endpoint, "encode content: %v", err)
	}
	if m.RootID != "" {
		path := "/open-apis/im/v1/messages/" + url.PathEscape(m.RootID) + "/reply"
		return c.messageID(ctx, endpoint, http.MethodPost, path, tok,
			imReplyRequest{MsgType: m.Type, Content: content, UUID: m.UUID})
	}
	switch m.Target.Kind {
	case config.TargetChatID, config.TargetOpenID, config.TargetUserID, config.TargetEmail:
	default:
		return "", badRequest(endpoint, "unknown target kind %q", m.Target.Kind)
	}
	path := "/open-apis/im/v1/messages?receive_id_type=" + m.Target.Kind
	return c.messageID(ctx, endpoint, http.MethodPost, path, tok,
		imCreateRequest{ReceiveID: m.Target.ID, MsgType: m.Type, Content: content, UUID: m.UUID})
}

// UpdateCard replaces the card of an interactive message the app sent
// earlier, in place (im/v1 only). Both the old and the new card must have
// config.update_multi set.
func (c *Client) UpdateCard(ctx context.Context, messageID string, card Card) error {
	if c.api != config.APIIMv1 {
		return badRequest(EndpointUpdate, "needs feishu.api %s", config.APIIMv1)
	}
	content, err := imContent(card)
	if err != nil {
		return badRequest(EndpointUpdate, "encode content: %v", err)
	}
	path := "/open-apis/im/v1/messages/" + url.PathEscape(messageID)
	// An update is bound by the app's limits only: it goes to a message,
	// not to a chat.
	return c.retry(ctx, EndpointUpdate, Target{}, func(tok string) error {
		return c.call(ctx, EndpointUpdate, http.MethodPatch, path, tok, struct {
			Content string `json:"content"`
		}{content}, nil)
	})
}
