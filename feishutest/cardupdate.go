package feishutest

import (
	"net/http"

	"golang.org/x/time/rate"
)

// updatesPerMessage is Feishu's limit on updates of one card.
const updatesPerMessage = 5

// updateLimited counts an update of message id against its 5 per second
// and answers the refusal. Feishu documents the limit but not its code;
// the stand-in answers 230020, the im/v1 "operation triggers the frequency
// limit" code that the service already backs off on. It is called with
// s.mu held and reports whether it answered.
func (s *Server) updateLimited(w http.ResponseWriter, id string) bool {
	b := s.cb.updates[id]
	if b == nil {
		b = rate.NewLimiter(updatesPerMessage, updatesPerMessage)
		s.cb.updates[id] = b
	}
	if b.AllowN(s.now(), 1) {
		return false
	}
	fail(w, http.StatusBadRequest, 230020, "This operation triggers the frequency limit.")
	return true
}
