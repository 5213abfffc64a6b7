package feishu

import (
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// previewTime is the Unix time a previewed custom bot request is signed at:
// fixed, and as long as any real one until 2286.
const previewTime = 2000000000

// Preview is the request that sending m as a new message through api
// (config.APIIMv1, or message/v4/send for any other) would make, without
// the token: its path and its JSON body. The render command prints it;
// nothing is sent. api APIBot is PreviewBot of an unsigned bot.
func Preview(api string, m Message) (path string, body []byte, err error) {
	var req any
	switch api {
	case APIBot:
		return PreviewBot(m, Webhook{})
	case config.APIIMv1:
		m.RootID = ""
		if _, path, req, err = newIMRequest(m); err != nil {
			return "", nil, err
		}
	default:
		path = v4Path
		if req, err = newV4Request(m); err != nil {
			return "", nil, err
		}
	}
	body, err = marshal(req)
	return path, body, err
}

// PreviewBot is the request that sending m to the custom bot at w would
// make. The bot's URL is a credential: the path is shown as
// <webhook_url>. With a secret, the request is signed at previewTime; a
// placeholder secret shows where the signature goes.
func PreviewBot(m Message, w Webhook) (path string, body []byte, err error) {
	req := newBotRequest(m)
	if w.Secret != "" {
		req.sign(previewTime, w.Secret)
	}
	body, err = marshal(req)
	return "<webhook_url>", body, err
}
