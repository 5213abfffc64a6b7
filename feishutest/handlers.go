package feishutest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenReissueWindow is Feishu's rule: asking for a token while the current
// one has less than this left yields a new one; otherwise the same one comes
// back with its remaining lifetime. With short test lifetimes the window
// shrinks in proportion (a quarter of the 2-hour lifetime).
func (s *Server) tokenReissueWindow() time.Duration {
	return min(30*time.Minute, s.tokenTTL/4)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if s.tokenFaulted(w, r) {
		return
	}
	var req struct {
		AppID     string `json:"app_id"`
		AppSecret string `json:"app_secret"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.AppID == "" || req.AppSecret == "" {
		fail(w, http.StatusOK, 10003, "invalid param")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenRequests++
	switch {
	case req.AppID != s.appID:
		fail(w, http.StatusOK, 10014, "app id not exists")
		return
	case req.AppSecret != s.secret:
		fail(w, http.StatusOK, 10014, "app secret invalid")
		return
	}
	now := s.now()
	left := s.tokens[s.current].Sub(now)
	if s.current == "" || left < s.tokenReissueWindow() {
		s.current = newID("t-")
		s.tokens[s.current] = now.Add(s.tokenTTL)
		left = s.tokenTTL
	}
	// The token fields sit at the top level, beside code and msg.
	writeJSON(w, http.StatusOK, map[string]any{
		"code": 0, "msg": "ok",
		"tenant_access_token": s.current,
		"expire":              int(left.Round(time.Second) / time.Second),
	})
}

// authorized checks the tenant token the way Feishu's gateway does. It is
// called with s.mu held.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		fail(w, http.StatusBadRequest, 99991661, "Missing access token for authorization. Please make a request with token attached.")
		return false
	}
	if !strings.HasPrefix(tok, "t-") {
		fail(w, http.StatusBadRequest, 99991671, "Invalid token: must start with t-/u-")
		return false
	}
	if exp, ok := s.tokens[tok]; !ok || !s.now().Before(exp) {
		fail(w, http.StatusBadRequest, 99991663, "Invalid access token for authorization. Please make a request with token attached.")
		return false
	}
	return true
}

// injected answers a send with a queued fault, or the every-nth one, if
// any. It is called with s.mu held and reports whether it answered.
func (s *Server) injected(w http.ResponseWriter) bool {
	if s.every > 0 {
		s.everyCount++
		if s.everyCount%s.every == 0 {
			answerFault(w, s.everyFault)
			return true
		}
	}
	if len(s.faults) == 0 {
		return false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	answerFault(w, f)
	return true
}

func answerFault(w http.ResponseWriter, f Fault) {
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	for k, v := range f.Header {
		w.Header().Set(k, v)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	fail(w, status, f.Code, f.Msg)
}

// appLimited answers a send over the per-app limits as Feishu's gateway
// does. It is called with s.mu held and reports whether it answered.
func (s *Server) appLimited(w http.ResponseWriter) bool {
	now := s.now()
	ok, delay := allowAll(now, s.appLimit, s.appMinute)
	if ok {
		return false
	}
	s.refusedApp++
	limit := s.appPerSecond
	if ok, _ := s.appLimit.peek(now); ok {
		limit = s.appPerMinute
	}
	w.Header().Set("x-ogw-ratelimit-limit", strconv.Itoa(limit))
	w.Header().Set("x-ogw-ratelimit-reset", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
	fail(w, http.StatusTooManyRequests, 99991400, "request trigger frequency limit")
	return true
}

// overLimit records a send to target and reports whether it exceeds the
// per-target limit. It is called with s.mu held.
func (s *Server) overLimit(target string) bool {
	if s.chatLimit <= 0 {
		return false
	}
	b, ok := s.chatBuckets[target]
	if !ok {
		b = s.newCounter(s.chatLimit, time.Second)
		s.chatBuckets[target] = b
	}
	if ok, _ := b.allow(s.now()); !ok {
		s.refusedChat++
		return true
	}
	return false
}

func (s *Server) wait(r *http.Request) {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
}

type v4Request struct {
	ChatID  string          `json:"chat_id"`
	OpenID  string          `json:"open_id"`
	UserID  string          `json:"user_id"`
	Email   string          `json:"email"`
	RootID  string          `json:"root_id"`
	MsgType string          `json:"msg_type"`
	Content json.RawMessage `json:"content"`
	Card    json.RawMessage `json:"card"`
}

func (s *Server) sendV4(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r) {
		return
	}
	defer s.mu.Unlock()
	var req v4Request
	body, err := io.ReadAll(io.LimitReader(r.Body, maxIMBodyRead))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, 9499, "Bad Request: "+err.Error())
		return
	}
	m := &Message{API: "v4", Type: req.MsgType}
	// Feishu reads the recipient in this order and uses the first present.
	switch {
	case req.ChatID != "":
		m.Target, m.TargetID = "chat_id", req.ChatID
	case req.OpenID != "":
		m.Target, m.TargetID = "open_id", req.OpenID
	case req.UserID != "":
		m.Target, m.TargetID = "user_id", req.UserID
	case req.Email != "":
		m.Target, m.TargetID = "email", req.Email
	default:
		fail(w, http.StatusBadRequest, 10003, "invalid param: no recipient")
		return
	}
	if code, msg := checkV4Content(m, req); code != 0 {
		fail(w, http.StatusBadRequest, code, msg)
		return
	}
	if s.tooLarge(w, m, len(body)) {
		return
	}
	if req.RootID != "" {
		root, ok := s.v4Root(w, req.RootID)
		if !ok {
			return
		}
		if root != nil && root.TargetID != m.TargetID {
			fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid message_id")
			return
		}
		if root != nil {
			m.RootID = req.RootID
		}
	}
	s.store(w, m, v4Codes)
}

// codes are the answers that differ between the two APIs.
type codes struct{ notMember, rateLimit int }

var (
	v4Codes = codes{notMember: 10030, rateLimit: 11233}
	imCodes = codes{notMember: 230002, rateLimit: 230020}
)

var codeMsgs = map[int]string{
	10030:  "bot not in chat",
	11233:  "create message chat trigger rate limit",
	230002: "Bot/User can NOT be out of the chat.",
	230020: "This operation triggers the frequency limit.",
}

// begin counts a send, waits out the latency, then takes s.mu and checks
// the token and the queued faults. It reports whether the request goes on,
// in which case s.mu is held.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	s.sends++
	s.mu.Unlock()
	s.wait(r)
	s.mu.Lock()
	if !s.authorized(w, r) || s.appLimited(w) || s.injected(w) {
		s.mu.Unlock()
		return false
	}
	return true
}

// replyTarget finds the message a reply is aimed at, answering as Feishu
// does when it is missing, recalled or deleted. It is called with s.mu held.
func (s *Server) replyTarget(w http.ResponseWriter, id string) (*Message, bool) {
	root := s.byID[id]
	switch {
	case root == nil:
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid message_id")
		return nil, false
	case root.Recalled:
		fail(w, http.StatusBadRequest, 230011, "The message is recalled.")
		return nil, false
	case root.Deleted:
		fail(w, http.StatusBadRequest, 230110, "Action unavailable as the message has been deleted.")
		return nil, false
	}
	return root, true
}

// store accepts m after the checks every send shares: the bot is in the
// chat, and the chat is under its rate limit. It is called with s.mu held.
func (s *Server) store(w http.ResponseWriter, m *Message, c codes) {
	if code, refused := s.refusesPostText(m); refused {
		fail(w, http.StatusBadRequest, code, "param is invalid, ext=text is required in a text node")
		return
	}
	if s.refusesMentions(w, m) {
		return
	}
	if f, ok := s.targetFaults[m.TargetID]; ok {
		answerFault(w, f)
		return
	}
	if m.Target == "chat_id" && s.notMember[m.TargetID] {
		fail(w, http.StatusBadRequest, c.notMember, codeMsgs[c.notMember])
		return
	}
	if s.overLimit(m.TargetID) {
		fail(w, http.StatusBadRequest, c.rateLimit, codeMsgs[c.rateLimit])
		return
	}
	m.ID, m.Time = newID("om_"), s.now()
	s.messages = append(s.messages, m)
	s.byID[m.ID] = m
	if m.UUID != "" {
		s.uuids[m.UUID] = m
	}
	if s.loseAnswers > 0 {
		s.loseAnswers--
		answerFault(w, Fault{Drop: true})
		return
	}
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "ok", Data: m.data()})
}

// data is the message object Feishu answers with; v4 reads only message_id.
func (m *Message) data() map[string]any {
	d := map[string]any{
		"message_id": m.ID, "msg_type": m.Type,
		"create_time": strconv.FormatInt(m.Time.UnixMilli(), 10),
		"body":        map[string]string{"content": string(m.Content)},
	}
	if m.RootID != "" {
		d["root_id"], d["parent_id"] = m.RootID, m.ParentID
	}
	if m.Target == "chat_id" {
		d["chat_id"] = m.TargetID
	}
	return d
}

// checkV4Content validates a v4 body's content for its msg_type: content is
// an object there (a string is refused), and a card travels in "card".
func checkV4Content(m *Message, req v4Request) (int, string) {
	content := req.Content
	switch req.MsgType {
	case "post":
		var c struct {
			Post json.RawMessage `json:"post"`
		}
		if err := json.Unmarshal(req.Content, &c); err != nil || len(c.Post) == 0 {
			return 10003, "invalid param: post content must be an object with a post field"
		}
		content = c.Post
	case "interactive":
		if len(req.Content) > 0 {
			return 10003, "invalid param: interactive messages carry their card in card"
		}
		content = req.Card
	}
	if !isObject(content) {
		return 10003, "invalid param: content must be an object"
	}
	text, err := readable(req.MsgType, content)
	if err != nil {
		return 10003, "invalid param: " + err.Error()
	}
	m.Content, m.Text = content, text
	return 0, ""
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// readable checks a content object of msgType and returns it as a reader
// would see it.
func readable(msgType string, content json.RawMessage) (string, error) {
	switch msgType {
	case "text":
		var c struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(content, &c); err != nil || c.Text == nil {
			return "", errors.New("text content must be an object with a text field")
		}
		return *c.Text, nil
	case "post":
		var c map[string]struct {
			Title   string `json:"title"`
			Content [][]struct {
				Tag    string `json:"tag"`
				Text   string `json:"text"`
				Href   string `json:"href"`
				UserID string `json:"user_id"`
			} `json:"content"`
		}
		if err := json.Unmarshal(content, &c); err != nil || len(c) == 0 {
			return "", errors.New("post content must map a locale to a title and paragraphs")
		}
		var lines []string
		for locale, p := range c {
			if locale != "zh_cn" && locale != "en_us" && locale != "ja_jp" {
				return "", fmt.Errorf("post locale %q is not supported", locale)
			}
			lines = append(lines, p.Title)
			for _, para := range p.Content {
				var line strings.Builder
				for _, n := range para {
					switch n.Tag {
					case "text":
						line.WriteString(n.Text)
					case "a":
						if !webURL(n.Href) {
							return "", fmt.Errorf("post link %q is not a valid URL", n.Href)
						}
						line.WriteString(n.Text)
					case "at":
						line.WriteString(`<at user_id="` + n.UserID + `"></at>`)
					default:
						return "", fmt.Errorf("post tag %q is not supported by the stand-in", n.Tag)
					}
				}
				lines = append(lines, line.String())
			}
		}
		return strings.Join(lines, "\n"), nil
	case "interactive":
		var c card
		if err := json.Unmarshal(content, &c); err != nil {
			return "", errors.New("card is not card JSON: " + err.Error())
		}
		if len(c.Elements) == 0 {
			return "", errors.New("card has no elements")
		}
		lines := []string{c.Header.Title.Content}
		for _, e := range c.Elements {
			if e.Text != nil {
				lines = append(lines, e.Text.Content)
				// Feishu refuses a card that mentions something other
				// than an open_id, a user_id or all.
				for _, m := range cardMention.FindAllStringSubmatch(e.Text.Content, -1) {
					if id := m[1]; id == "" || strings.ContainsAny(id, "@\"'") {
						return "", fmt.Errorf("ErrCode: 100290; ErrMsg: invalid at id %q", id)
					}
				}
			}
			for _, t := range e.Texts {
				lines = append(lines, t.Content)
			}
			for _, a := range e.Actions {
				// A button opens a link, or hands its value (an object)
				// back to the app that sent the card, or both.
				switch {
				case a.URL != "" && !webURL(a.URL):
					return "", fmt.Errorf("button url %q is not a valid URL", a.URL)
				case a.URL == "" && len(a.Value) == 0:
					return "", errors.New("button has neither a url nor a value")
				case len(a.Value) > 0 && a.Value[0] != '{':
					return "", errors.New("button value must be an object")
				}
			}
		}
		return strings.Join(lines, "\n"), nil
	}
	return "", fmt.Errorf("unsupported msg_type %s", msgType)
}

// webURL reports whether s is a link Feishu accepts in a post or a button.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// card is what the stand-in reads of card JSON 1.0.
type card struct {
	Config struct {
		UpdateMulti bool `json:"update_multi"`
	} `json:"config"`
	Header struct {
		Template string `json:"template"`
		Title    struct {
			Content string `json:"content"`
		} `json:"title"`
	} `json:"header"`
	Elements []struct {
		Tag  string `json:"tag"`
		Text *struct {
			Content string `json:"content"`
		} `json:"text"`
		Texts []struct {
			Content string `json:"content"`
		} `json:"elements"`
		Actions []struct {
			URL   string          `json:"url"`
			Value json.RawMessage `json:"value"`
		} `json:"actions"`
	} `json:"elements"`
}

func (s *Server) batchGetID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if !s.authorized(w, r) {
		return
	}
	if s.lookupFault != nil {
		answerFault(w, *s.lookupFault)
		return
	}
	if t := r.URL.Query().Get("user_id_type"); t != "" && t != "open_id" {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: user_id_type "+t+" is not served by the stand-in")
		return
	}
	var req struct {
		Emails []string `json:"emails"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, 9499, "Bad Request")
		return
	}
	if len(req.Emails) > 50 {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: emails has more than 50 items")
		return
	}
	type user struct {
		UserID string `json:"user_id,omitempty"`
		Email  string `json:"email"`
	}
	list := make([]user, 0, len(req.Emails))
	for _, e := range req.Emails {
		list = append(list, user{UserID: s.users[strings.ToLower(e)], Email: e})
	}
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "success", Data: map[string]any{"user_list": list}})
}
