package feishutest

import "net/http"

// SetUserName gives the user with openID a name in the contacts API, as an
// app with the contact:user.base:readonly scope reads it.
func (s *Server) SetUserName(openID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[openID] = name
}

// RefuseUserNames answers the contacts API's user lookups as Feishu does an
// app without the scope to read them.
func (s *Server) RefuseUserNames(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseNames = refuse
}

// user answers GET /open-apis/contact/v3/users/{id}?user_id_type=open_id.
func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(w, r) {
		return
	}
	if s.refuseNames {
		// Feishu's answer to an app that lacks the scope.
		fail(w, http.StatusBadRequest, 99991672, "Access denied. One of the following scopes is required: [contact:user.base:readonly]")
		return
	}
	if t := r.URL.Query().Get("user_id_type"); t != "open_id" {
		fail(w, http.StatusBadRequest, 99992402, "field validation failed: user_id_type "+t+" is not served by the stand-in")
		return
	}
	name, ok := s.names[r.PathValue("id")]
	if !ok {
		fail(w, http.StatusBadRequest, 41050, "no user authority error")
		return
	}
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "success", Data: map[string]any{"user": map[string]any{"open_id": r.PathValue("id"), "name": name}}})
}
