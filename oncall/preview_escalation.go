package oncall

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// previewEscalations writes, for each receiver with escalation, which
// groups escalate and each step: when it fires, how it buzzes, and whom
// it would reach at t, as Reach would.
func previewEscalations(w io.Writer, cfg *config.Config, rotations map[string]*Rotation, t time.Time) {
	for _, rc := range cfg.Receivers {
		e := rc.Escalation
		if e == nil {
			continue
		}
		if len(e.When) == 0 {
			fmt.Fprintf(w, "receiver %s escalates every group\n", rc.Name)
		} else {
			fmt.Fprintf(w, "receiver %s escalates when %s\n", rc.Name, strings.Join(e.When, ", "))
		}
		for i, s := range e.Steps {
			reached := names(scheduled(rotations, &config.Mentions{OnCall: s.Mention.OnCall, Users: s.Mention.Users}, t))
			fmt.Fprintf(w, "receiver %s step %d after %s (urgent %s) reaches: %s\n", rc.Name, i+1, s.After, s.UrgentKind(), reached)
		}
	}
}

// names is people as the preview shows them, each once, comma-separated;
// "nobody" for none.
func names(people []config.Person) string {
	var out []string
	seen := map[string]bool{}
	for _, p := range people {
		if s := person(p); !seen[strings.ToLower(s)] {
			seen[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "nobody"
	}
	return strings.Join(out, ", ")
}
