package feishu_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

func testCard(title string, updateMulti bool) feishu.Card {
	return feishu.Card{
		Config: feishu.CardConfig{WideScreenMode: true, UpdateMulti: updateMulti},
		Header: feishu.CardHeader{Template: "red", Title: feishu.CardText{Tag: "plain_text", Content: title}},
		Elements: []feishu.CardElement{
			{Tag: "div", Text: &feishu.CardText{Tag: "lark_md", Content: "**body** of " + title}},
			{Tag: "action", Actions: []feishu.CardButton{{Tag: "button", Type: "primary",
				Text: feishu.CardText{Tag: "plain_text", Content: "Alertmanager"}, URL: "http://am.example/#/alerts"}}},
		},
	}
}

func post(chat string) feishu.Message {
	return feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: chat}, Type: config.MsgPost, Content: feishu.Post{
		Locale: "en_us", Title: "[FIRING:1] X",
		Paragraphs: [][]feishu.PostNode{{{Tag: "text", Text: "line one"}}, {{Tag: "a", Text: "Alertmanager", Href: "http://am.example"}}},
	}}
}

// Every message type goes through both APIs in the shape each one wants:
// the stand-in refuses a v4 card in content, a v4 post without its post
// wrapper, an im/v1 content that is not a JSON string, and so on.
func TestEveryMessageTypeThroughBothAPIs(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			s := feishutest.New(t)
			c, _ := newSender(t, s, feishutest.AppSecret, api)
			ctx := context.Background()
			cardMsg := feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: "oc_1"}, Type: config.MsgInteractive, Content: testCard("[FIRING:1] X", true)}
			for _, m := range []feishu.Message{text("oc_1", "plain"), post("oc_1"), cardMsg} {
				_, err := c.Send(ctx, m)
				require.NoError(t, err, m.Type)
			}
			got := s.Messages()
			require.Len(t, got, 3)
			require.Equal(t, "plain", got[0].Text)
			require.Equal(t, "[FIRING:1] X\nline one\nAlertmanager", got[1].Text)
			require.JSONEq(t, `{"en_us":{"title":"[FIRING:1] X","content":[[{"tag":"text","text":"line one"}],[{"tag":"a","text":"Alertmanager","href":"http://am.example"}]]}}`, string(got[1].Content))
			require.Equal(t, "[FIRING:1] X\n**body** of [FIRING:1] X", got[2].Text)
			var card feishu.Card
			require.NoError(t, json.Unmarshal(got[2].Content, &card))
			require.Equal(t, testCard("[FIRING:1] X", true), card)
		})
	}
}

// A send repeated with the same uuid, as after a crash or a timeout, yields
// the one message Feishu already has.
func TestUUIDMakesSendsIdempotent(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newSender(t, s, feishutest.AppSecret, config.APIIMv1)
	ctx := context.Background()
	// sendTwice sends m twice and returns the one message ID both yield.
	sendTwice := func(m feishu.Message) string {
		first, err := c.Send(ctx, m)
		require.NoError(t, err)
		again, err := c.Send(ctx, m)
		require.NoError(t, err)
		require.Equal(t, first, again)
		return first
	}
	m := text("oc_1", "first")
	m.UUID = "0123456789abcdef0123456789abcdef-0011223344556677"
	root := sendTwice(m)
	require.Len(t, s.Messages(), 1)
	require.Equal(t, m.UUID, s.Messages()[0].UUID)

	reply := text("oc_1", "reply")
	reply.RootID, reply.UUID = root, "reply-uuid"
	sendTwice(reply)
	require.Len(t, s.Messages(), 2)

	m.UUID = string(make([]byte, feishu.MaxUUIDLen+1))
	_, err := c.Send(ctx, m)
	require.ErrorContains(t, err, "uuid is longer than 50")
}

func TestUpdateCard(t *testing.T) {
	s := feishutest.New(t)
	sender, _ := newSender(t, s, feishutest.AppSecret, config.APIIMv1)
	c := sender.(feishu.CardUpdater)
	ctx := context.Background()
	send := func(m feishu.Message) string {
		id, err := sender.Send(ctx, m)
		require.NoError(t, err)
		return id
	}
	shared := send(feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: "oc_1"}, Type: config.MsgInteractive, Content: testCard("[FIRING:1] X", true)})
	require.NoError(t, c.UpdateCard(ctx, shared, testCard("[RESOLVED] X", true)))
	got, _ := s.Message(shared)
	require.Equal(t, 1, got.Updates)
	require.Contains(t, got.Text, "[RESOLVED] X")

	// Feishu's conditions: a card, update_multi before and after, not gone.
	notShared := send(feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: "oc_1"}, Type: config.MsgInteractive, Content: testCard("x", false)})
	err := c.UpdateCard(ctx, notShared, testCard("y", true))
	require.ErrorContains(t, err, "code 230099")
	require.ErrorContains(t, err, "update_multi is false")
	require.Equal(t, feishu.Permanent, feishu.Classify(err))
	require.ErrorContains(t, c.UpdateCard(ctx, shared, testCard("y", false)), "update_multi is false")
	plain := send(text("oc_1", "plain"))
	require.ErrorContains(t, c.UpdateCard(ctx, plain, testCard("y", true)), "code 230001")
	s.Recall(shared)
	require.Equal(t, feishu.RootGone, feishu.Classify(c.UpdateCard(ctx, shared, testCard("z", true))))

	v4, _ := newSender(t, s, feishutest.AppSecret, config.APIv4)
	_, ok := v4.(feishu.CardUpdater)
	require.False(t, ok, "v4 cannot update a card")
}

// im/v1 answers with its own codes; they classify as v4's do.
func TestIMv1Classification(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newSender(t, s, feishutest.AppSecret, config.APIIMv1)
	ctx := context.Background()
	root, err := c.Send(ctx, text("oc_1", "root"))
	require.NoError(t, err)
	reply := func(id string) error {
		m := text("oc_1", "reply")
		m.RootID = id
		_, err := c.Send(ctx, m)
		return err
	}
	require.Equal(t, feishu.RootGone, feishu.Classify(reply("om_unknown")), "230001 invalid message_id")
	s.Recall(root)
	err = reply(root)
	require.ErrorContains(t, err, "code 230011")
	require.Equal(t, feishu.RootGone, feishu.Classify(err))

	s.RemoveBot("oc_2")
	_, err = c.Send(ctx, text("oc_2", "x"))
	require.ErrorContains(t, err, "code 230002")
	require.Equal(t, feishu.Permanent, feishu.Classify(err))

	// The client's own pacing is off here: the stand-in's limit is hit,
	// and the send, retried until its deadline, fails as transient.
	s.SetChatRateLimit(1)
	_, err = c.Send(ctx, text("oc_3", "x"))
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	_, err = c.Send(short, text("oc_3", "x"))
	require.ErrorContains(t, err, "code 230020")
	require.Equal(t, feishu.Transient, feishu.Classify(err))
}

// An im/v1 send refused after an attempt whose answer was lost may have
// made its message all the same: the refusal says so. One refused at
// once, or one that never reached Feishu, did not.
func TestRefusalAfterALostAnswer(t *testing.T) {
	refusal := feishutest.Fault{Status: 400, Code: 230001, Msg: "param is invalid, ext=uuid has been used"}
	s := feishutest.New(t)
	c, _ := newSender(t, s, feishutest.AppSecret, config.APIIMv1)
	m := text("oc_1", "x")
	m.UUID = "u-1"

	s.FailNext(1, feishutest.Fault{Drop: true})
	s.FailNext(1, refusal)
	_, err := c.Send(t.Context(), m)
	var fe *feishu.Error
	require.ErrorAs(t, err, &fe)
	require.Equal(t, 230001, fe.Code)
	require.True(t, fe.AfterLostAnswer)
	require.True(t, feishu.MayHaveSent(err))

	s.FailNext(1, refusal)
	_, err = c.Send(t.Context(), m)
	require.False(t, feishu.MayHaveSent(err), "refused at once")

	m.UUID = ""
	s.FailNext(1, feishutest.Fault{Drop: true})
	s.FailNext(1, refusal)
	_, err = c.Send(t.Context(), m)
	require.ErrorAs(t, err, &fe)
	require.False(t, fe.AfterLostAnswer, "without a uuid, a second message is no answer to the first")

	// A connection never made sent nothing.
	dead := feishutest.New(t)
	dc, _ := newSender(t, dead, feishutest.AppSecret, config.APIIMv1)
	tok, _ := dc.Send(t.Context(), text("oc_1", "warm the token"))
	require.NotEmpty(t, tok)
	require.NoError(t, dead.Close())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = dc.Send(ctx, m)
	require.Error(t, err)
	require.False(t, feishu.Unanswered(err), "%v", err)
	require.False(t, feishu.MayHaveSent(err))

	// Nor did a send whose token never came: the token call's timeout is
	// no lost answer to the send it was for.
	hung := feishutest.New(t)
	hc, _ := newSender(t, hung, feishutest.AppSecret, config.APIIMv1)
	hung.FailTokens(&feishutest.TokenFault{Hang: true})
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = hc.Send(ctx, m)
	var te *feishu.TokenError
	require.ErrorAs(t, err, &te)
	require.False(t, feishu.Unanswered(err), "%v", err)
	require.False(t, feishu.MayHaveSent(err))
	require.Empty(t, hung.Messages())
}
