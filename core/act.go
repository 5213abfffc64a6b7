package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/render"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// The actions a button asks for, as render puts them on its value (a
// contract), and the one a refused callback is counted as.
const (
	ActionAck       = render.ActionAck
	ActionSilence   = render.ActionSilence
	ActionUnsilence = render.ActionUnsilence
	actionUnknown   = "unknown"
)

// Results of an action, as the actions metric counts them.
const (
	resultDone      = "done"
	resultDuplicate = "duplicate" // done before: nothing changes
	resultRefused   = "refused"   // not allowed, not valid, or Alertmanager did not do it: nothing done
	resultFailed    = "failed"    // the incident busy or the state failed: not recorded; the clicker may try again
)

// buttonValue is the object a button carries back (a contract).
type buttonValue struct {
	Action   string `json:"action"`
	Incident string `json:"incident"`
	Duration string `json:"duration,omitempty"`
}

// recordTimeout bounds the commit of an action, which goes on past the
// click's own deadline.
const recordTimeout = 5 * time.Second

// lockWait bounds the wait for an incident's chain when a click arrives
// while a notification of it is being sent: the clicker is answered within
// Feishu's 3 s, told to try again, rather than left with Feishu's timeout.
const lockWait = 1200 * time.Millisecond

// Callback acts on one click of a root card's button: acknowledge, silence
// in Alertmanager, or expire that silence. It runs under the incident's
// chain lock on whichever replica Feishu handed the click to, answers with
// a toast and the card as it now is, and afterwards updates the root card
// for the whole chat and records the action in the chain. Nothing is done
// for a click that is refused, and a repeat of one acted on is answered as
// the first was.
func (c *Core) Callback(ctx context.Context, cb actions.Callback) actions.Answer {
	var v buttonValue
	if err := json.Unmarshal(cb.Value, &v); err != nil || v.Incident == "" {
		return c.refuse(actionUnknown, cb, "the button's value is not one of this service's", toastUnknown)
	}
	switch v.Action {
	case ActionAck, ActionSilence, ActionUnsilence:
	default:
		return c.refuse(actionUnknown, cb, fmt.Sprintf("unknown action %q", v.Action), toastUnknown)
	}
	pl := c.Pipeline()
	if pl.Config.Actions == nil {
		return c.refuse(v.Action, cb, "actions are not configured", toastUnknown)
	}
	if cb.AppID != "" && cb.AppID != pl.Config.Feishu.AppID {
		return c.refuse(v.Action, cb, "the callback is for another app", toastUnknown)
	}
	chain := incident.ChainOf(v.Incident)
	if chain == "" {
		return c.refuse(v.Action, cb, "the button names no incident", toastUnknown)
	}

	lctx, cancel := context.WithTimeout(ctx, lockWait)
	unlock, err := c.store.Lock(lctx, chain)
	cancel()
	if err != nil {
		return c.fail(v.Action, cb, fmt.Errorf("lock incident: %w", err), toastBusy)
	}
	defer unlock()
	in, err := c.store.Get(ctx, v.Incident)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return c.refuse(v.Action, cb, "the button names no incident", toastUnknown)
	case err != nil:
		return c.fail(v.Action, cb, err, toastBusy)
	}
	rc := pl.Receiver(in.Receiver)
	if rc == nil || !pl.Config.HasActions(rc.Config) {
		return c.refuse(v.Action, cb, "the incident's receiver has no actions", toastUnknown)
	}
	if answer, ok := in.Answered(cb.EventID); ok {
		c.actions.WithLabelValues(v.Action, resultDuplicate).Inc()
		return c.answerWith(rc, in, toastFrom(answer))
	}
	a := &act{core: c, pipeline: pl, receiver: rc, incident: in, cb: cb, value: v, now: c.now(),
		logger: c.logger.With("receiver", rc.Name(), "incident", in.ID, "action", v.Action, "by", cb.Operator.OpenID)}
	return a.run(ctx)
}

// act is one click being acted on, under its incident's lock.
type act struct {
	core     *Core
	pipeline *Pipeline
	receiver *Receiver
	incident *incident.Incident
	cb       actions.Callback
	value    buttonValue
	now      time.Time
	logger   *slog.Logger
}

func (a *act) run(ctx context.Context) actions.Answer {
	c, in, v := a.core, a.incident, a.value
	ok, err := a.pipeline.Mentions.Allows(ctx, a.pipeline.Config.Actions.Allowed, a.cb.Operator.OpenID, a.cb.Operator.UserID)
	if !ok {
		reason := "not in actions.allowed"
		if err != nil {
			reason += " (the contacts lookup failed: " + err.Error() + ")"
		}
		return c.refuse(v.Action, a.cb, reason, toastNotAllowed)
	}
	if !in.Open() {
		// Refused, with the card as it ends: a card still showing buttons
		// (its update lost) is put right.
		c.refused(v.Action, a.cb, "the incident is resolved")
		return c.answerWith(a.receiver, in, toastResolved)
	}
	by := incident.Person{OpenID: a.cb.Operator.OpenID, Name: a.pipeline.name(ctx, a.cb.Operator.OpenID)}
	var o outcome
	switch v.Action {
	case ActionAck:
		o = a.acknowledge(by)
	case ActionSilence:
		o = a.silence(ctx, by)
	case ActionUnsilence:
		o = a.unsilence(ctx, by)
	}
	done, t := o.done, o.toast
	if done == nil {
		// Refused, or done before: the answer carries no card, and
		// Feishu keeps the card as it is. Of two clicks at once, the
		// one that acted brings the chat the new card, once.
		return actions.Answer{Toast: t.toast(a.receiver.Config.Language)}
	}
	answer, _ := json.Marshal(t)
	in.Remember(a.cb.EventID, a.now, answer)
	// Acknowledging stops the escalation; a silence holds it until it
	// ends; expiring the silence resumes it at the next step not fired.
	due := in.Escalation.Due
	in.Escalation.Due = c.nextDue(escalation(a.receiver, in), in)
	// What was done in Alertmanager is recorded even when the click's
	// answer is late: a silence left unrecorded would be made again by the
	// next click. The answer is then too late for Feishu, and the card is
	// updated through the API below.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := c.store.Commit(rctx, state.Write{Incident: in, At: a.now}); err != nil {
		return c.fail(v.Action, a.cb, fmt.Errorf("record action: %w", err), toastBusy)
	}
	if !in.Escalation.Due.Equal(due) {
		// A timer left behind finds the incident acknowledged, and goes.
		_ = c.reschedule(rctx, in, a.logger)
	}
	c.actions.WithLabelValues(v.Action, resultDone).Inc()
	a.logger.Info("incident acted on from its card", "silence", silenceID(in))
	out := c.answerWith(a.receiver, in, t)
	// The answer's card replaces the card for the whole chat (it has
	// update_multi). An answer that comes too late is dropped by Feishu,
	// so then the card is updated through the API instead.
	var late json.RawMessage
	if ctx.Err() != nil {
		late = out.Card
	}
	c.afterAction(a.receiver, in, *done, late)
	return out
}

// outcome is what an action did, nil for nothing, and what the clicker is
// told.
type outcome struct {
	done  *render.Action
	toast toast
}

func (a *act) acknowledge(by incident.Person) outcome {
	in := a.incident
	if in.Ack != nil {
		a.core.actions.WithLabelValues(ActionAck, resultDuplicate).Inc()
		return outcome{toast: toastAlreadyAcknowledged(in.Ack, a.receiver)}
	}
	in.Ack = &incident.Ack{By: by, At: a.now}
	return outcome{done: &render.Action{Kind: ActionAck, By: by}, toast: toastAcknowledged}
}

func (a *act) silence(ctx context.Context, by incident.Person) outcome {
	in, cfg := a.incident, a.pipeline.Config.Actions
	d, ok := cfg.Durations[a.value.Duration]
	if !ok {
		return a.refuse(ActionSilence, fmt.Sprintf("duration %q is not in actions.silence_durations", a.value.Duration), toastUnknown)
	}
	if in.Silenced(a.now) {
		a.core.actions.WithLabelValues(ActionSilence, resultDuplicate).Inc()
		return outcome{toast: toastAlreadySilenced(in.Silence, a.receiver)}
	}
	if a.pipeline.Silencer == nil {
		return a.refuse(ActionSilence, "actions.alertmanager has no urls", toastUnknown)
	}
	until := a.now.Add(d)
	id, err := a.pipeline.Silencer.Create(ctx, actions.Silence{
		Matchers:  actions.SilenceMatchers(in.GroupLabels, in.CommonLabels),
		StartsAt:  a.now,
		EndsAt:    until,
		CreatedBy: createdBy(by),
		Comment:   fmt.Sprintf("Silenced for %s from its Feishu card (message %s) by %s; incident %s, group %s.", a.value.Duration, in.Root, createdBy(by), in.ID, in.GroupKey),
	})
	if err != nil {
		return a.alertmanagerFailed(ActionSilence, err)
	}
	in.Silence = &incident.Silence{ID: id, Until: until, By: by}
	return outcome{
		done:  &render.Action{Kind: ActionSilence, By: by, Duration: a.value.Duration, Until: until, SilenceURL: silenceURL(in)},
		toast: toastSilenced(a.value.Duration),
	}
}

func (a *act) unsilence(ctx context.Context, by incident.Person) outcome {
	in := a.incident
	if !in.Silenced(a.now) {
		a.core.actions.WithLabelValues(ActionUnsilence, resultDuplicate).Inc()
		return outcome{toast: toastNotSilenced}
	}
	if a.pipeline.Silencer == nil {
		return a.refuse(ActionUnsilence, "actions.alertmanager has no urls", toastUnknown)
	}
	if err := a.pipeline.Silencer.Expire(ctx, in.Silence.ID); err != nil {
		return a.alertmanagerFailed(ActionUnsilence, err)
	}
	url := silenceURL(in)
	in.Silence = nil
	return outcome{done: &render.Action{Kind: ActionUnsilence, By: by, SilenceURL: url}, toast: toastUnsilenced}
}

// alertmanagerFailed refuses a click that Alertmanager did not carry out,
// and tells the clicker why: refused (trying again will not help) or not
// reached (trying again may). Either way the incident and its card stay as
// they were, and the log says what each URL answered.
func (a *act) alertmanagerFailed(action string, err error) outcome {
	var refused *actions.RefusedError
	if errors.As(err, &refused) {
		return a.refuse(action, err.Error(), toastAlertmanagerRefused(refused.Message))
	}
	return a.refuse(action, err.Error(), toastAlertmanagerDown)
}

func (a *act) refuse(action, reason string, t toast) outcome {
	a.core.refused(action, a.cb, reason)
	return outcome{toast: t}
}

// afterAction records the action in the chain once the clicker has been
// answered, a reply that says who did what, and updates the root card in
// place if card is not nil. Both are courtesies with retries of their own:
// the action is recorded already.
func (c *Core) afterAction(rc *Receiver, in *incident.Incident, done render.Action, card json.RawMessage) {
	root := in.Root
	c.background.Go(func() {
		ctx, cancel := context.WithTimeout(c.base, time.Minute)
		defer cancel()
		logger := c.logger.With("receiver", rc.Name(), "incident", in.ID)
		if updater, ok := rc.Sender.(feishu.CardUpdater); ok && card != nil {
			var rendered feishu.Card
			if err := json.Unmarshal(card, &rendered); err == nil {
				c.updateCard(ctx, updater, rc, root, rendered, logger)
			}
		}
		msg, err := rc.pipeline.Renderer.ActionReply(rc.Config, done)
		if err != nil {
			logger.Error("action not recorded in the chain: render", "err", err)
			return
		}
		msg.Target, msg.RootID = rc.Target, root
		if _, err := rc.Sender.Send(ctx, msg); err != nil {
			logger.Warn("action not recorded in the chain", "err", err)
		}
	})
}

// answerWith is the answer to a click: the toast, and the root card as the
// incident now is when it can be rendered.
func (c *Core) answerWith(rc *Receiver, in *incident.Incident, t toast) actions.Answer {
	out := actions.Answer{Toast: t.toast(rc.Config.Language)}
	card, err := c.rootCard(rc, in)
	if err != nil {
		c.logger.Warn("root card not rendered for a click's answer", "incident", in.ID, "err", err)
		return out
	}
	if b, err := json.Marshal(card); err == nil {
		out.Card = b
	}
	return out
}

// rootCard renders an incident's root card from its last notification and
// its state: what every replica can do from the record alone.
func (c *Core) rootCard(rc *Receiver, in *incident.Incident) (feishu.Card, error) {
	if len(in.Last) == 0 {
		return feishu.Card{}, errors.New("the incident keeps no notification to render")
	}
	p, err := webhook.DecodeBytes(in.Last)
	if err != nil {
		return feishu.Card{}, err
	}
	msg, err := rc.pipeline.Renderer.RenderWith(p, rc.Config, oncallNone, render.Options{Card: c.cardState(rc, in)})
	if err != nil {
		return feishu.Card{}, err
	}
	card, ok := msg.Content.(feishu.Card)
	if !ok {
		return feishu.Card{}, errors.New("the receiver's messages are not cards")
	}
	return card, nil
}

// RefusedCallback counts a callback its transport refused (and logged)
// before its action was known: a bad signature, token or timestamp, or not
// a callback at all.
func (c *Core) RefusedCallback(string) {
	c.actions.WithLabelValues(actionUnknown, resultRefused).Inc()
}

func (c *Core) refuse(action string, cb actions.Callback, reason string, t toast) actions.Answer {
	c.refused(action, cb, reason)
	return actions.Answer{Toast: t.toast("")}
}

// refused counts and logs a click that is not acted on.
func (c *Core) refused(action string, cb actions.Callback, reason string) {
	c.actions.WithLabelValues(action, resultRefused).Inc()
	c.logger.Warn("card action refused", "action", action, "reason", reason, "by", cb.Operator.OpenID, "event_id", cb.EventID)
}

func (c *Core) fail(action string, cb actions.Callback, err error, t toast) actions.Answer {
	c.actions.WithLabelValues(action, resultFailed).Inc()
	c.logger.Error("card action failed", "action", action, "by", cb.Operator.OpenID, "event_id", cb.EventID, "err", err)
	return actions.Answer{Toast: t.toast("")}
}

func silenceID(in *incident.Incident) string {
	if in.Silence == nil {
		return ""
	}
	return in.Silence.ID
}

// createdBy names the person in Alertmanager: their name when Feishu told
// it, and their open_id, which names them for sure.
func createdBy(p incident.Person) string {
	if p.Name != "" {
		return p.Name + " (feishu " + p.OpenID + ")"
	}
	return "feishu " + p.OpenID
}
