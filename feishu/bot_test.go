package feishu_test

import (
	"context"
	"fmt"
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

// botOf is c's sender to the stand-in's bot with token, signing with
// secret.
func botOf(c *feishu.Client, s *feishutest.Server, token, secret string) feishu.Sender {
	return c.Bot(feishu.Webhook{URL: s.BotURL(token), Secret: secret})
}

func botMessage(typ string, content any) feishu.Message {
	return feishu.Message{Target: feishu.Target{Kind: config.TargetWebhook, ID: "team-bot"}, Type: typ, Content: content}
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
		id, err := botOf(c, s, "tok", "s3cret").Send(context.Background(), botMessage(typ, content))
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

	x := botMessage(config.MsgText, feishu.Text{Text: "x"})
	for name, tc := range map[string]struct {
		bot feishu.Sender
		msg feishu.Message
	}{
		"wrong secret":   {botOf(c, s, "tok", "other"), x},
		"no signature":   {botOf(c, s, "tok", ""), x},
		"unknown hook":   {botOf(c, s, "gone", ""), x},
		"too big a body": {botOf(c, s, "tok", "s3cret"), botMessage(config.MsgText, feishu.Text{Text: string(make([]byte, feishutest.BotMaxBytes))})},
	} {
		before := s.Sends()
		_, err := tc.bot.Send(ctx, tc.msg)
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
		_, err := botOf(c, s, "tok", "s3cret").Send(ctx, x)
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
	bot := c.Bot(feishu.Webhook{URL: "http://127.0.0.1:1/open-apis/bot/v2/hook/secret-token-123"})
	_, err := bot.Send(ctx, botMessage(config.MsgText, feishu.Text{Text: "x"}))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret-token-123")
}

// A bot sender paces by its target, which must be a custom bot's: one
// aimed at a chat would take the app's slots, so it is refused unsent.
func TestBotRefusesAnAppTarget(t *testing.T) {
	s := feishutest.New(t)
	s.AddBot("tok", "")
	c, _ := newBotClient(t, s)
	_, err := botOf(c, s, "tok", "").Send(context.Background(), text("oc_1", "x"))
	require.EqualError(t, err, `feishu bot/v2/hook: target "chat_id oc_1" is not a custom bot`)
	require.Equal(t, feishu.Permanent, feishu.Classify(err))
	require.Zero(t, s.Sends())
}

// Neither fmt nor slog shows a webhook's URL or secret.
func TestWebhookIsNotPrinted(t *testing.T) {
	w := feishu.Webhook{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/tok-123", Secret: "s3cret"}
	var c feishu.Client
	for _, s := range []string{fmt.Sprint(w), fmt.Sprintf("%+v", w), fmt.Sprint(c.Bot(w)), fmt.Sprintf("%+v", c.Bot(w)), w.LogValue().String()} {
		require.NotContains(t, s, "tok-123")
		require.NotContains(t, s, "s3cret")
	}
}

// PreviewBot shows a signed body in the shape a bot is sent, and never
// the webhook's URL.
func TestPreviewBot(t *testing.T) {
	m := botMessage(config.MsgText, feishu.Text{Text: "x"})
	path, body, err := feishu.PreviewBot(m, feishu.Webhook{URL: "https://x/hook/tok-123", Secret: "<secret>"})
	require.NoError(t, err)
	require.Equal(t, "<webhook_url>", path)
	require.JSONEq(t, `{"timestamp":"2000000000","sign":"`+feishutest.BotSign(2000000000, "<secret>")+`","msg_type":"text","content":{"text":"x"}}`, string(body))
	_, unsigned, err := feishu.Preview(feishu.APIBot, m)
	require.NoError(t, err)
	require.JSONEq(t, `{"msg_type":"text","content":{"text":"x"}}`, string(unsigned))
}
