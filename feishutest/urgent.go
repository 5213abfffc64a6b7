package feishutest

import (
	"net/http"
	"slices"
	"strings"
)

// Urgent is one buzz the stand-in made: the people it reached, on a
// message, by kind ("app", "sms" or "phone").
type Urgent struct {
	MessageID string
	Kind      string
	OpenIDs   []string
}

// maxUrgentUsers is Feishu's limit on user_id_list.
const maxUrgentUsers = 200

// urgents is the stand-in's state for buzzes: chat members, the tenant's
// paid quotas, and what was buzzed.
type urgents struct {
	members map[string]map[string]bool // chat_id -> open_ids
	quota   map[string]int             // kind -> buzzes left; absent = unlimited
	others  map[string]bool            // messages someone else sent
	done    []Urgent
}

// routeUrgent registers the urgent endpoints.
func (s *Server) routeUrgent(mux *http.ServeMux) {
	s.urg.members = map[string]map[string]bool{}
	s.urg.quota = map[string]int{}
	s.urg.others = map[string]bool{}
	for _, kind := range []string{"app", "sms", "phone"} {
		mux.HandleFunc("PATCH /open-apis/im/v1/messages/{id}/urgent_"+kind, func(w http.ResponseWriter, r *http.Request) {
			s.urgent(w, r, kind)
		})
	}
}

// AddChatMembers puts people in a chat, so that they can be buzzed on its
// messages. The user a message was sent to is always in its chat.
func (s *Server) AddChatMembers(chatID string, openIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.urg.members[chatID]
	if m == nil {
		m = map[string]bool{}
		s.urg.members[chatID] = m
	}
	for _, id := range openIDs {
		m[id] = true
	}
}

// SetUrgentQuota leaves the tenant n buzzes of kind ("sms" or "phone", the
// ones Feishu bills), one per person buzzed; n < 0 makes them unlimited, as
// they start. App buzzes are free and have no quota.
func (s *Server) SetUrgentQuota(kind string, n int) {
	if kind != "sms" && kind != "phone" {
		panic("feishutest: no urgent quota for kind " + kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		delete(s.urg.quota, kind)
		return
	}
	s.urg.quota[kind] = n
}

// SentByOther marks a message as sent by someone other than the app's bot
// (a user, another app), which Feishu does not let the app buzz on.
func (s *Server) SentByOther(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urg.others[id] = true
}

// Urgents returns the buzzes made, oldest first.
func (s *Server) Urgents() []Urgent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Urgent, len(s.urg.done))
	for i, u := range s.urg.done {
		u.OpenIDs = slices.Clone(u.OpenIDs)
		out[i] = u
	}
	return out
}

// member reports whether openID is in m's chat: a group's members, or the
// user of a one-to-one chat (known by its open_id, or by the email
// AddUser gave it; the stand-in knows no user_id's open_id). It is called
// with s.mu held.
func (s *Server) member(m *Message, openID string) bool {
	switch m.Target {
	case "chat_id":
		return s.urg.members[m.TargetID][openID]
	case "open_id":
		return m.TargetID == openID
	case "email":
		return s.users[strings.ToLower(m.TargetID)] == openID
	}
	return false
}

// urgent buzzes people on a message with Feishu's rules: only a message
// the bot sent and that is still there, the bot in its chat, the people in
// it too (the others come back in invalid_user_id_list, and 230001 when no
// one is left), within the tenant's paid quota for SMS and phone. A buzz
// counts as a send, and is bound by the same token, app rate limit,
// latency and faults. Not modelled: batch messages, a group that lets only
// its admins buzz, users outside the app's availability (230013) or with
// too many unread buzzes (230023). The msgs of 230012 and 230024 are the
// stand-in's: Feishu documents only the codes.
func (s *Server) urgent(w http.ResponseWriter, r *http.Request, kind string) {
	if !s.begin(w, r) {
		return
	}
	defer s.mu.Unlock()
	if t := r.URL.Query().Get("user_id_type"); t != "open_id" {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: user_id_type "+t+" is not served by the stand-in")
		return
	}
	var req struct {
		UserIDList []string `json:"user_id_list"`
	}
	if _, ok := readJSON(w, r, &req); !ok {
		return
	}
	if n := len(req.UserIDList); n == 0 || n > maxUrgentUsers {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: user_id_list must hold 1 to 200 ids")
		return
	}
	m := s.byID[r.PathValue("id")]
	switch {
	case m == nil:
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid message_id")
		return
	case m.Recalled || m.Deleted:
		// The urgent docs list 230110 for a message that is gone, and
		// not the recall code (230011) replies get.
		fail(w, http.StatusBadRequest, 230110, "Action unavailable as the message has been deleted.")
		return
	case s.urg.others[m.ID]:
		fail(w, http.StatusBadRequest, 230012, "The operator is not the sender of the message.")
		return
	case m.Target == "chat_id" && s.notMember[m.TargetID]:
		fail(w, http.StatusBadRequest, 230002, codeMsgs[230002])
		return
	}
	valid, invalid := []string{}, []string{}
	for _, id := range req.UserIDList {
		if s.member(m, id) {
			valid = append(valid, id)
		} else {
			invalid = append(invalid, id)
		}
	}
	if len(valid) == 0 {
		// Feishu documents the code but not the msg; this one follows
		// its "ext=" convention.
		fail(w, http.StatusBadRequest, 230001, "param is invalid, ext=invalid user id")
		return
	}
	// An unconfirmed choice: a call that does not fit in what is left of
	// the quota buzzes no one.
	if left, limited := s.urg.quota[kind]; limited {
		if left < len(valid) {
			fail(w, http.StatusBadRequest, 230024, "Reach the upper limit of urgent message.")
			return
		}
		s.urg.quota[kind] = left - len(valid)
	}
	s.urg.done = append(s.urg.done, Urgent{MessageID: m.ID, Kind: kind, OpenIDs: valid})
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "success", Data: map[string]any{"invalid_user_id_list": invalid}})
}
