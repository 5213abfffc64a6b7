package feishutest

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Limits of im/v1 as documented; sizes are SizeRule's.
const (
	uuidWindow    = time.Hour           // a uuid succeeds at most once in this window
	maxUUIDLen    = 50                  // characters
	updateWindow  = 14 * 24 * time.Hour // cards older than this cannot be updated
	maxIMBodyRead = 1 << 20
)

type imRequest struct {
	ReceiveID string          `json:"receive_id"`
	MsgType   string          `json:"msg_type"`
	Content   json.RawMessage `json:"content"`
	UUID      string          `json:"uuid"`
}

var receiveIDTypes = map[string]bool{"chat_id": true, "open_id": true, "user_id": true, "email": true, "union_id": true}

func (s *Server) createIM(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r) {
		return
	}
	defer s.mu.Unlock()
	kind := r.URL.Query().Get("receive_id_type")
	if !receiveIDTypes[kind] {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: receive_id_type")
		return
	}
	m, req, ok := s.readIM(w, r)
	if !ok {
		return
	}
	if req.ReceiveID == "" {
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid receive_id")
		return
	}
	m.Target, m.TargetID = kind, req.ReceiveID
	s.store(w, m, imCodes)
}

func (s *Server) replyIM(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r) {
		return
	}
	defer s.mu.Unlock()
	m, _, ok := s.readIM(w, r)
	if !ok {
		return
	}
	if s.replyFault(w, r.PathValue("id")) {
		return
	}
	parent, ok := s.replyTarget(w, r.PathValue("id"))
	if !ok {
		return
	}
	m.Target, m.TargetID, m.ParentID = parent.Target, parent.TargetID, parent.ID
	// A reply to a reply belongs to the same root.
	m.RootID = parent.RootID
	if m.RootID == "" {
		m.RootID = parent.ID
	}
	s.store(w, m, imCodes)
}

// readIM reads the body of a create or reply: content is a JSON string
// holding the content object, and a uuid already used in the last hour
// answers with the message it created. It is called with s.mu held and
// reports whether the request goes on.
func (s *Server) readIM(w http.ResponseWriter, r *http.Request) (*Message, imRequest, bool) {
	var req imRequest
	body, ok := readJSON(w, r, &req)
	if !ok {
		return nil, req, false
	}
	if len([]rune(req.UUID)) > maxUUIDLen {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: uuid is longer than 50 characters")
		return nil, req, false
	}
	if prev := s.uuids[req.UUID]; req.UUID != "" && prev != nil && s.now().Sub(prev.Time) < uuidWindow {
		// Documented: one success per uuid per hour. What a repeat is
		// answered is not: SetReusedUUIDAnswer.
		s.reusedUUIDs++
		if f := s.reusedUUID; f != nil {
			answerFault(w, *f)
			return nil, req, false
		}
		writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "ok", Data: prev.data()})
		return nil, req, false
	}
	var content string
	if err := json.Unmarshal(req.Content, &content); err != nil || !isObject(json.RawMessage(content)) {
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=content is not a JSON string of an object")
		return nil, req, false
	}
	text, err := readable(req.MsgType, json.RawMessage(content))
	if err != nil {
		code := 230001
		if req.MsgType == "interactive" {
			code = 230099
		}
		fail(w, http.StatusBadRequest, code, "param is invalid, ext="+err.Error())
		return nil, req, false
	}
	m := &Message{API: "im_v1", Type: req.MsgType, UUID: req.UUID, Content: json.RawMessage(content), Text: text}
	if s.tooLarge(w, m, len(body)) {
		return nil, req, false
	}
	return m, req, true
}

// readJSON reads an im/v1 body into v and returns it, for the size limits;
// a body that is not JSON is answered as Feishu's gateway does.
func readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxIMBodyRead))
	if err != nil || json.Unmarshal(body, v) != nil {
		fail(w, http.StatusBadRequest, 9499, "Bad Request")
		return nil, false
	}
	return body, true
}

// patchIM updates a card in place, with the documented conditions: an
// interactive message, not recalled or deleted, under 14 days old, and
// update_multi set in both the old and the new card, at most 5 per second.
func (s *Server) patchIM(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(w, r) {
		return
	}
	var req struct {
		Content json.RawMessage `json:"content"`
	}
	body, ok := readJSON(w, r, &req)
	if !ok {
		return
	}
	m, ok := s.replyTarget(w, r.PathValue("id"))
	if !ok || s.updateLimited(w, m.ID) {
		return
	}
	var content string
	var next card
	switch {
	case m.Type != "interactive":
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=only interactive messages can be updated")
		return
	case s.now().Sub(m.Time) > updateWindow:
		fail(w, http.StatusBadRequest, 230031, "The message has been sent for more than 14 days and cannot be updated.")
		return
	case json.Unmarshal(req.Content, &content) != nil || json.Unmarshal([]byte(content), &next) != nil:
		fail(w, http.StatusBadRequest, 230099, "Failed to create card content, ext=ErrCode: 200621; ErrMsg: parse card json err")
		return
	case s.tooLarge(w, &Message{API: "im_v1", Type: "interactive", Content: json.RawMessage(content)}, len(body)):
		return
	}
	var prev card
	_ = json.Unmarshal(m.Content, &prev) // it was checked when it was sent
	if !prev.Config.UpdateMulti || !next.Config.UpdateMulti {
		fail(w, http.StatusBadRequest, 230099, "Failed to create card content, ext=ErrCode: 300302; ErrMsg: update_multi is false")
		return
	}
	text, err := readable("interactive", json.RawMessage(content))
	if err != nil {
		fail(w, http.StatusBadRequest, 230099, "Failed to create card content, ext="+err.Error())
		return
	}
	if m.Updates == 0 {
		m.FirstText = m.Text
	}
	m.Content, m.Text = json.RawMessage(content), text
	m.Updates++
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "ok", Data: struct{}{}})
}

// ReusedUUIDFault is a plausible answer to a reused uuid, for
// SetReusedUUIDAnswer: Feishu documents none, so the stand-in makes one up
// in the shape of im/v1's invalid-parameter answers.
var ReusedUUIDFault = Fault{Status: http.StatusBadRequest, Code: 230001, Msg: "param is invalid, ext=uuid has been used"}

// SetReusedUUIDAnswer sets what im/v1 answers a create or reply whose uuid
// made a message within the hour. Feishu documents only that one send per
// uuid succeeds; nil, the default, answers with the message the uuid made,
// as clients report, and f answers f instead (ReusedUUIDFault, or any
// other).
func (s *Server) SetReusedUUIDAnswer(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reusedUUID = f
}

// ReusedUUIDs counts the im/v1 sends whose uuid had made a message within
// the hour.
func (s *Server) ReusedUUIDs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reusedUUIDs
}

// LoseAnswers makes the next n sends the stand-in accepts close the
// connection instead of answering: the message is kept, and its sender
// never learns it.
func (s *Server) LoseAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseAnswers = n
}
