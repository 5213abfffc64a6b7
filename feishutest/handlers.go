package feishutest

import (
	"encoding/json"
	"net/http"
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

// injected answers a send with the next queued fault, if any. It is called
// with s.mu held and reports whether it answered.
func (s *Server) injected(w http.ResponseWriter) bool {
	if len(s.faults) == 0 {
		return false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
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
	return true
}

// overLimit records a send to target and reports whether it exceeds the
// per-target limit. It is called with s.mu held.
func (s *Server) overLimit(target string) bool {
	if s.chatLimit <= 0 {
		return false
	}
	now := s.now()
	var kept []time.Time
	for _, t := range s.recent[target] {
		if now.Sub(t) < time.Second {
			kept = append(kept, t)
		}
	}
	if len(kept) >= s.chatLimit {
		s.recent[target] = kept
		s.refused++
		return true
	}
	s.recent[target] = append(kept, now)
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
	s.mu.Lock()
	s.sends++
	s.mu.Unlock()
	s.wait(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(w, r) || s.injected(w) {
		return
	}
	var req v4Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, 9499, "Bad Request: "+err.Error())
		return
	}
	m := &Message{API: "v4", RootID: req.RootID, Type: req.MsgType}
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
	if code, msg := s.checkContent(m, req); code != 0 {
		fail(w, http.StatusBadRequest, code, msg)
		return
	}
	if m.Target == "chat_id" && s.notMember[m.TargetID] {
		fail(w, http.StatusBadRequest, 10030, "bot not in chat")
		return
	}
	if req.RootID != "" {
		root := s.byID[req.RootID]
		switch {
		case root == nil || root.TargetID != m.TargetID:
			fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid message_id")
			return
		case root.Recalled:
			fail(w, http.StatusBadRequest, 230011, "The message is recalled.")
			return
		case root.Deleted:
			fail(w, http.StatusBadRequest, 230110, "Action unavailable as the message has been deleted.")
			return
		}
	}
	if s.overLimit(m.TargetID) {
		fail(w, http.StatusBadRequest, 11233, "create message chat trigger rate limit")
		return
	}
	m.ID, m.Time = newID("om_"), s.now()
	s.messages = append(s.messages, m)
	s.byID[m.ID] = m
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "ok", Data: map[string]string{"message_id": m.ID}})
}

// checkContent validates a v4 body's content for its msg_type: content is
// an object there (a string is refused), and a card travels in "card".
func (s *Server) checkContent(m *Message, req v4Request) (int, string) {
	switch req.MsgType {
	case "text":
		var c struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(req.Content, &c); err != nil || c.Text == nil {
			return 10003, "invalid param: text content must be an object with a text field"
		}
		m.Content, m.Text = req.Content, *c.Text
	case "post":
		var c struct {
			Post map[string]json.RawMessage `json:"post"`
		}
		if err := json.Unmarshal(req.Content, &c); err != nil || len(c.Post) == 0 {
			return 10003, "invalid param: post content must be an object with a post field"
		}
		m.Content = req.Content
	case "interactive":
		var c map[string]json.RawMessage
		if err := json.Unmarshal(req.Card, &c); err != nil || len(c) == 0 {
			return 10003, "invalid param: interactive messages carry their card in card"
		}
		m.Content = req.Card
	default:
		return 10003, "invalid param: unsupported msg_type " + req.MsgType
	}
	return 0, ""
}

func (s *Server) batchGetID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(w, r) {
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
