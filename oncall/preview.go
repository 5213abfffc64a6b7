package oncall

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Preview writes who is on call in each rotation at t, whom each
// receiver's policy would mention in a firing notification then, and whom
// each step of its escalation would reach if it fired then, as the
// configuration names them (emails are not looked up).
func Preview(w io.Writer, cfg *config.Config, t time.Time) error {
	fmt.Fprintf(w, "at %s\n", t.Format(time.RFC3339))
	rotations, err := newRotations(cfg.OnCall)
	if err != nil {
		return err
	}
	for _, r := range cfg.OnCall {
		who := "nobody (before its start)"
		if p, ok := rotations[r.Name].At(t); ok {
			who = person(p)
		}
		fmt.Fprintf(w, "rotation %s: %s\n", r.Name, who)
	}
	for _, rc := range cfg.Receivers {
		m := rc.Mentions
		if m == nil {
			continue
		}
		line := names(scheduled(rotations, m, t))
		if len(m.AllWhen) > 0 {
			line += "; @all when " + strings.Join(m.AllWhen, ", ")
		}
		if m.FromLabel != "" {
			line += "; and whoever the label " + m.FromLabel + " names"
		}
		if m.OnResolved {
			line += "; on resolved too"
		}
		fmt.Fprintf(w, "receiver %s mentions: %s\n", rc.Name, line)
	}
	previewEscalations(w, cfg, rotations, t)
	return nil
}

func person(p config.Person) string {
	switch {
	case p.Email != "":
		return p.Email
	case p.OpenID != "":
		return p.OpenID
	}
	return "user_id " + p.UserID
}
