package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/render"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// oncallNone mentions no one: a root card rendered again for its state
// does not page anyone again.
var oncallNone = oncall.Mentions{}

// cardState is what rc's root card shows of in now.
func (c *Core) cardState(rc *Receiver, in *incident.Incident) *render.CardState {
	return rc.cardState(in, c.now())
}

// cardState is what r's root card shows of in at now: its state and
// buttons where r has actions, its escalation where r escalates (and its
// messages are cards), nil otherwise: those cards look as they always did.
func (r *Receiver) cardState(in *incident.Incident, now time.Time) *render.CardState {
	cfg := r.pipeline.Config
	if !keepsLast(r) {
		return nil
	}
	st := &render.CardState{Escalation: in.Escalation, EscalatedTo: in.Escalation.Reached}
	if !cfg.HasActions(r.Config) {
		return st // no ID: no buttons
	}
	st.ID, st.Ack = in.ID, in.Ack
	if r.pipeline.Silencer != nil {
		st.Durations = cfg.Actions.SilenceDurations
	}
	if in.Silenced(now) {
		st.Silence = in.Silence
	}
	return st
}

// silenceURL links to in's silence in Alertmanager's UI, from the
// externalURL its last notification came with; "" for none.
func silenceURL(in *incident.Incident) string {
	if in.Silence == nil || len(in.Last) == 0 {
		return ""
	}
	p, err := webhook.DecodeBytes(in.Last)
	if err != nil {
		return ""
	}
	return render.SilenceURL(p.ExternalURL, in.Silence.ID)
}

// acts reports whether anything acts on rc's incidents after their
// notifications: card actions, which silence by the group's labels, or an
// escalation policy, which matches them. Only such incidents keep the
// labels; the others' records stay small.
func acts(rc *Receiver) bool {
	return rc.pipeline.Config.HasActions(rc.Config) || rc.Config.Escalation != nil
}

// keepsLast reports whether rc's incidents keep their last notification:
// those whose root card is rendered again, for an action, from the record
// alone. Others keep none, and their commits stay as small as a chain's
// root always was.
func keepsLast(rc *Receiver) bool {
	cfg := rc.pipeline.Config
	return cfg.HasActions(rc.Config) ||
		rc.Config.Escalation != nil && rc.Config.MsgType == config.MsgInteractive && cfg.Feishu.API == config.APIIMv1
}

// updateCard replaces the root card of rc's incident in place.
func (c *Core) updateCard(ctx context.Context, updater feishu.CardUpdater, rc *Receiver, root string, card feishu.Card, logger *slog.Logger) {
	if root == "" {
		// Feishu never gave the root's ID (see reusedUUIDAnswer): there
		// is no card to update.
		logger.Debug("root card not updated: its message ID is unknown")
		return
	}
	if err := updater.UpdateCard(ctx, root, card); err != nil {
		c.rootUpdates.WithLabelValues(rc.Name(), "failed").Inc()
		logger.Warn("root card not updated", "root", root, "err", err)
		return
	}
	c.rootUpdates.WithLabelValues(rc.Name(), "updated").Inc()
}
