package feishutest

// Seed makes the stand-in hold messages it did not send in this run, as
// Feishu still holds a release's messages after the service is upgraded:
// replies to them and updates of them work as they would have then.
func (s *Server) Seed(msgs ...Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.messages = append(s.messages, &m)
		s.byID[m.ID] = &m
		if m.UUID != "" {
			s.uuids[m.UUID] = &m
		}
	}
}
