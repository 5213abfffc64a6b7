package feishutest

import (
	"net/http"
)

// TokenFault is how the stand-in answers token requests instead of with a
// token: Feishu refusing (a Fault's status, code and msg), the connection
// dropped (Fault.Drop), no answer at all (Hang), or an answer that is not
// Feishu's (NotFeishu: a proxy's error page, a wrong base URL).
type TokenFault struct {
	Fault
	// Hang answers nothing until the caller gives up.
	Hang bool
	// NotFeishu answers Fault.Status (502 if 0) with an HTML page.
	NotFeishu bool
}

// tokenFaults is the fault every token request gets (token.go).
type tokenFaults struct{ fault *TokenFault }

// FailTokens makes every token request answer f, until FailTokens(nil).
// Tokens issued before stay valid.
func (s *Server) FailTokens(f *TokenFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok.fault = f
}

// tokenFaulted answers r with the token fault, if one is set, and reports
// whether it did. It is called without s.mu held: a hanging answer must not
// stop the stand-in.
func (s *Server) tokenFaulted(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.tok.fault
	if f != nil {
		s.tokenRequests++
	}
	s.mu.Unlock()
	switch {
	case f == nil:
		return false
	case f.Hang:
		<-r.Context().Done()
	case f.NotFeishu:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"))
	default:
		answerFault(w, f.Fault)
	}
	return true
}
