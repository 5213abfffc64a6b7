package feishu_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// recorder answers every call with success and keeps the body of the last
// send.
type recorder struct {
	mu   sync.Mutex
	last []byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if strings.Contains(req.URL.Path, "tenant_access_token") {
		fmt.Fprint(w, `{"code":0,"msg":"ok","tenant_access_token":"t-1","expire":7200}`)
		return
	}
	r.mu.Lock()
	r.last = body
	r.mu.Unlock()
	fmt.Fprint(w, `{"code":0,"msg":"ok","data":{"message_id":"om_1"}}`)
}

// sent is the body that sending m through snd put on the wire.
func (r *recorder) sent(t *testing.T, snd feishu.Sender, m feishu.Message) []byte {
	t.Helper()
	_, err := snd.Send(t.Context(), m)
	require.NoError(t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// sizeContents are contents of every type, small and large, of the text
// JSON escapes the most: quotes, backslashes, control characters, invalid
// UTF-8, U+2028, and multi-byte characters, which it does not.
func sizeContents() map[string][]any {
	nasty := "<at user_id=\"ou_1\"></at> \\ \x01\b\f\n\r\t \xc0\xff \u2028\u2029 告警 & <b>"
	big := strings.Repeat(nasty, 600) // about 30 KB before encoding
	cjk := strings.Repeat("磁盘已满", 2500)
	post := func(s string) feishu.Post {
		return feishu.Post{Locale: "zh_cn", Title: s[:min(len(s), 100)], Paragraphs: [][]feishu.PostNode{
			{{Tag: "at", UserID: "ou_1"}, {Tag: "text", Text: " "}},
			{{Tag: "text", Text: s}},
			{{Tag: "a", Text: "Alertmanager", Href: "https://am.example/#/alerts?receiver=" + s[:min(len(s), 50)]}},
		}}
	}
	card := func(s string) feishu.Card {
		c := testCard(s[:min(len(s), 100)], true)
		c.Elements[0].Text.Content = s
		return c
	}
	out := map[string][]any{}
	for _, s := range []string{"", "x", nasty, big, cjk} {
		out[config.MsgText] = append(out[config.MsgText], feishu.Text{Text: s})
		out[config.MsgPost] = append(out[config.MsgPost], post(s))
		out[config.MsgInteractive] = append(out[config.MsgInteractive], card(s))
	}
	return out
}

// Measure, which encodes a message's content alone, is never below the
// body a sender puts on the wire, whatever the target, root and uuid, and
// never far above; and it is RequestSize, which encodes the whole request,
// so that render cuts messages where it always did.
func TestMeasureBoundsTheRequest(t *testing.T) {
	rec := &recorder{}
	c, _ := newClientWith(t, feishutest.New(t), config.Feishu{AppID: feishutest.AppID}, feishutest.AppSecret, config.RateLimit{})
	feishu.SetTransport(c, handlerTransport{rec})

	hex32 := strings.Repeat("0123456789abcdef", 2)
	targets := []feishu.Target{
		{Kind: config.TargetChatID, ID: "oc_" + hex32}, {Kind: config.TargetOpenID, ID: "ou_" + hex32},
		{Kind: config.TargetUserID, ID: "5d8a1b2c"}, {Kind: config.TargetEmail, ID: "someone.with.a.long.name@subsidiary.example.com"},
	}
	roots := []string{"", "om_" + hex32}
	uuids := []string{"", strings.Repeat("u", feishu.MaxUUIDLen)}
	bot := feishu.Target{Kind: config.TargetWebhook, ID: "team-bot"}
	senders := []struct {
		api  string
		name string
		snd  feishu.Sender
	}{
		{config.APIIMv1, "im_v1", c.IMv1()},
		{config.APIv4, "v4", c.V4()},
		{feishu.APIBot, "bot", c.Bot(feishu.Webhook{URL: "http://bot.invalid/open-apis/bot/v2/hook/tok"})},
		{feishu.APIBot, "signed bot", c.Bot(feishu.Webhook{URL: "http://bot.invalid/open-apis/bot/v2/hook/tok", Secret: "s3cret"})},
	}
	for _, s := range senders {
		for typ, contents := range sizeContents() {
			for i, content := range contents {
				measure := feishu.Measure(s.api, feishu.Message{Type: typ, Content: content})
				require.Equal(t, feishu.RequestSize(s.api, feishu.Message{Type: typ, Content: content}), measure, "%s %s #%d", s.name, typ, i)
				for _, target := range targets {
					for _, root := range roots {
						for _, uuid := range uuids {
							m := feishu.Message{Target: target, RootID: root, Type: typ, Content: content, UUID: uuid}
							if s.api == feishu.APIBot {
								m.Target = bot
							}
							real := len(rec.sent(t, s.snd, m))
							require.GreaterOrEqual(t, measure, real, "%s %s #%d to %s root %q uuid %q", s.name, typ, i, target, root, uuid)
							require.Less(t, measure-real, 200, "%s %s #%d to %s root %q uuid %q", s.name, typ, i, target, root, uuid)
						}
					}
				}
			}
		}
	}
}

// Footprint counts at least the style tags the stand-in does, each at
// StyleTagBytes, above the request: render cuts a message to it, so that
// a Feishu that counts tags as stored, at up to that many bytes a tag,
// takes it.
func TestFootprintCountsTheStyleTags(t *testing.T) {
	s := feishutest.New(t)
	s.SetSizeRule(feishutest.SizeRule{KB: 1 << 20}) // no limit: only the count matters
	for _, api := range apis {
		c, _ := newSender(t, s, feishutest.AppSecret, api)
		contents := sizeContents()
		contents[config.MsgInteractive] = append(contents[config.MsgInteractive], testCard("**x** [l](https://l.example) :OK: 23:00:00 &#42; <at id=ou_1></at>", true))
		contents[config.MsgText] = append(contents[config.MsgText], feishu.Text{Text: "**x** [l](https://l.example) <at user_id=\"ou_1\"></at> <i>i</i>"})
		for typ, cs := range contents {
			for i, content := range cs {
				m := feishu.Message{Target: feishu.Target{Kind: config.TargetChatID, ID: "oc_1"}, Type: typ, Content: content}
				_, err := c.Send(t.Context(), m)
				require.NoError(t, err, "%s %s #%d", api, typ, i)
				got := s.Messages()
				counted := got[len(got)-1].StyleTags()
				require.GreaterOrEqual(t, feishu.StyleTags(m), counted, "%s %s #%d", api, typ, i)
				require.Equal(t, feishu.Measure(api, m)+feishu.StyleTagBytes*feishu.StyleTags(m), feishu.Footprint(api, m))
			}
		}
	}
}
