package feishutest

import "net/http"

// V4LostRootPosted, given to SetV4LostRootCode, makes v4 post a send whose
// root_id was recalled or deleted as a message of its own, without
// threading, and answer success.
const V4LostRootPosted = -1

// lostRoots are the answers to replies whose root is lost or refused.
type lostRoots struct {
	v4Code  int              // v4's answer to a recalled or deleted root_id; 0 = im/v1's codes
	replies map[string]Fault // answers to every reply to a root
}

// SetV4LostRootCode sets what message/v4/send answers for a recalled or
// deleted root_id, which Feishu does not document: code (HTTP 400) instead
// of the im/v1 codes (230011 recalled, 230110 deleted) the stand-in answers
// by default, V4LostRootPosted for a success that posts the message
// unthreaded, or 0 for the default again. A root_id Feishu never issued
// still answers 230001.
func (s *Server) SetV4LostRootCode(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost.v4Code = code
}

// FailReplies makes every reply to the message rootID (im/v1's reply, or a
// v4 send with that root_id) answer f, until ClearReplies; other sends
// succeed.
func (s *Server) FailReplies(rootID string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost.replies == nil {
		s.lost.replies = map[string]Fault{}
	}
	s.lost.replies[rootID] = f
}

// ClearReplies ends FailReplies's fault for rootID.
func (s *Server) ClearReplies(rootID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lost.replies, rootID)
}

// replyFault answers a reply to id with FailReplies's fault, if any. It is
// called with s.mu held and reports whether it answered.
func (s *Server) replyFault(w http.ResponseWriter, id string) bool {
	f, ok := s.lost.replies[id]
	if ok {
		answerFault(w, f)
	}
	return ok
}

// v4Root finds the message a v4 send's root_id names, answering for a lost
// one as SetV4LostRootCode says. It returns nil and true when the message
// goes on unthreaded. It is called with s.mu held.
func (s *Server) v4Root(w http.ResponseWriter, id string) (*Message, bool) {
	if s.replyFault(w, id) {
		return nil, false
	}
	root := s.byID[id]
	if s.lost.v4Code == 0 || root == nil || (!root.Recalled && !root.Deleted) {
		return s.replyTarget(w, id)
	}
	if s.lost.v4Code == V4LostRootPosted {
		return nil, true
	}
	fail(w, http.StatusBadRequest, s.lost.v4Code, "root message is lost")
	return nil, false
}
