package feishu_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// newBotClient is a client with no app at all, as a configuration of
// custom bots alone has, paced at Feishu's custom bot limits.
func newBotClient(t *testing.T, s *feishutest.Server) (*feishu.Client, *feishu.Metrics) {
	t.Helper()
	return newClientWith(t, s, config.Feishu{API: config.APIIMv1}, "", config.RateLimit{PerBot: 5, PerBotMinute: 100})
}

func botMessage(s *feishutest.Server, token, secret, typ string, content any) feishu.Message {
	return feishu.Message{
		Target: feishu.Target{Kind: config.TargetWebhook, ID: "team-bot"}, Type: typ, Content: content,
		Webhook: feishu.Webhook{URL: s.BotURL(token), Secret: secret},
	}
}

// Each message type goes through a signed custom bot, without any token.
func TestBotSendsEveryTypeSigned(t *testing.T) {
	s := feishutest.New(t)
	s.AddBot("tok", "s3cret")
	c, m := newBotClient(t, s)
	for typ, content := range map[string]any{
		config.MsgText:        feishu.Text{Text: `<at user_id="ou_1"></at> disk full`},
		config.MsgPost:        feishu.Post{Locale: "en_us", Title: "t", Paragraphs: [][]feishu.PostNode{{{Tag: "text", Text: "disk full"}}}},
		config.MsgInteractive: testCard("disk full", false),
	} {
		id, err := c.Send(context.Background(), botMessage(s, "tok", "s3cret", typ, content))
		require.NoError(t, err, typ)
		require.Empty(t, id, "a custom bot answers no message ID")
	}
	require.Len(t, s.Messages(), 3)
	require.Zero(t, s.TokenRequests(), "no app, no tenant token")
	require.Equal(t, 3.0, testutil.ToFloat64(m.Requests.WithLabelValues(feishu.EndpointBot, "0")))
}

// Feishu's custom bot codes: a wrong signature, an unknown hook or a bad
// body is permanent and tried once; the frequency limit is retried after a
// pause. No error names the webhook URL, which is a credential.
func TestBotErrors(t *testing.T) {
	s := feishutest.New(t)
	s.AddBot("tok", "s3cret")
	c, _ := newBotClient(t, s)
	ctx := context.Background()

	for name, msg := range map[string]feishu.Message{
		"wrong secret":   botMessage(s, "tok", "other", config.MsgText, feishu.Text{Text: "x"}),
		"no signature":   botMessage(s, "tok", "", config.MsgText, feishu.Text{Text: "x"}),
		"unknown hook":   botMessage(s, "gone", "", config.MsgText, feishu.Text{Text: "x"}),
		"too big a body": botMessage(s, "tok", "s3cret", config.MsgText, feishu.Text{Text: string(make([]byte, feishutest.BotMaxBytes))}),
	} {
		before := s.Sends()
		_, err := c.Send(ctx, msg)
		require.Error(t, err, name)
		require.Equal(t, feishu.Permanent, feishu.Classify(err), "%s: %v", name, err)
		require.Equal(t, before+1, s.Sends(), "%s: not retried", name)
		require.NotContains(t, err.Error(), "/hook/", name)
	}

	// Over the limit Feishu enforces (here 2/s, below the pacer's 5/s):
	// refused with 11232, retried after a pause, all delivered.
	s.SetBotRateLimit(2, 100)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for range 6 {
		_, err := c.Send(ctx, botMessage(s, "tok", "s3cret", config.MsgText, feishu.Text{Text: "x"}))
		require.NoError(t, err)
	}
	require.Len(t, s.Messages(), 6)
}

// A transport error names neither the webhook's token nor its host path.
func TestBotTransportErrorHidesTheURL(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newBotClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg := botMessage(s, "secret-token-123", "", config.MsgText, feishu.Text{Text: "x"})
	msg.Webhook.URL = "http://127.0.0.1:1/open-apis/bot/v2/hook/secret-token-123"
	_, err := c.Send(ctx, msg)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret-token-123")
}
