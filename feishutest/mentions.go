package feishutest

import (
	"net/http"
	"strings"
)

// mentionRules are the stricter answers Feishu gives to mentions, off by
// default so that tests which do not ask for them see today's leniency.
type mentionRules struct {
	strictOpenIDs bool
	known         map[string]bool // open_ids registered by KnowOpenIDs
	allOff        map[string]bool // chats whose owner has not enabled @all
}

// SetStrictOpenIDs makes a card that mentions an open_id the stand-in does
// not know refused, as Feishu refuses one from another app (open_ids are
// per app): 230099 with sub-code 100290. Known are the open_ids of AddUser,
// AddChatMembers and KnowOpenIDs. Text and post are not affected: Feishu
// shows the name of an invalid <at user_id> without a mention.
func (s *Server) SetStrictOpenIDs(strict bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ment.strictOpenIDs = strict
}

// KnowOpenIDs makes open_ids valid mentions under SetStrictOpenIDs.
func (s *Server) KnowOpenIDs(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ment.known == nil {
		s.ment.known = map[string]bool{}
	}
	for _, id := range ids {
		s.ment.known[id] = true
	}
}

// SetAllowAll says whether the owner of chatID enabled @all; it is by
// default, as the stand-in always was. Where it is not, a card with @all
// is refused (Feishu: "the card fails to send"), and so are v4 text and
// post, with 11235. What im/v1 text and post answer is not documented:
// the stand-in accepts them.
func (s *Server) SetAllowAll(chatID string, allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ment.allOff == nil {
		s.ment.allOff = map[string]bool{}
	}
	s.ment.allOff[chatID] = !allowed
}

// Answers to refused mentions. The card's @all refusal is the stand-in's
// wording: Feishu documents the failure but not its message.
const (
	codeCardInvalid = 230099
	codeV4AtAll     = 11235
	msgUnknownID    = "Failed to create card content, ext=ErrCode: 100290; ErrMsg: invalid user resource; ErrorValue: at id "
	msgCardAtAll    = "Failed to create card content, ext=@all is not enabled in this chat by its owner"
	msgV4AtAll      = "@all is not enabled in this chat"
)

// refusesMentions answers m's mentions as the stricter rules say, and
// reports whether it did. It is called with s.mu held.
func (s *Server) refusesMentions(w http.ResponseWriter, m *Message) bool {
	card := m.Type == "interactive"
	for _, id := range m.Mentions() {
		switch {
		case id == "all" && s.ment.allOff[m.TargetID] && card:
			fail(w, http.StatusBadRequest, codeCardInvalid, msgCardAtAll)
			return true
		case id == "all" && s.ment.allOff[m.TargetID] && m.API == "v4":
			fail(w, http.StatusBadRequest, codeV4AtAll, msgV4AtAll)
			return true
		case card && s.ment.strictOpenIDs && strings.HasPrefix(id, "ou_") && !s.knowsOpenID(id):
			fail(w, http.StatusBadRequest, codeCardInvalid, msgUnknownID+id)
			return true
		}
	}
	return false
}

// knowsOpenID reports whether id was registered by AddUser,
// AddChatMembers or KnowOpenIDs. It is called with s.mu held.
func (s *Server) knowsOpenID(id string) bool {
	if s.ment.known[id] {
		return true
	}
	for _, u := range s.users {
		if u == id {
			return true
		}
	}
	for _, members := range s.urg.members {
		if members[id] {
			return true
		}
	}
	return false
}
