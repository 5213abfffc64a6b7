package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// How the timers are looked for: every replica polls the store's due index
// this often, so that a step fires within a second of its time, and claims
// what it has room for, each of which it alone then fires.
const (
	pollEvery = 250 * time.Millisecond
	// maxFiring bounds the steps one replica fires at a time. A poll
	// claims only what there is room for, and does not wait for the steps
	// under way: one slow step (its chain's lock held, Feishu slow to
	// answer) delays no other.
	maxFiring = 16
	// stepTimeout bounds one step's firing (the lock, the reply with its
	// retries, the commit, the buzz): under the store's claim, so that the
	// claim does not pass to another replica while the step is under way.
	stepTimeout = 20 * time.Second
	// maxRetryWait bounds the wait before a step that failed is tried
	// again: the first waits a claim's time, each next one twice as long,
	// so that a step Feishu refuses for good (the bot taken out of the
	// chat) is not tried, and logged, twice a minute for as long as the
	// incident lasts.
	maxRetryWait = 10 * time.Minute
	// heldRecheck is how long a step that Alertmanager holds waits before
	// it is asked about again. Alertmanager sends nothing for a muted
	// group, not even when its silence ends, so asking is the only way to
	// learn that the step may fire; a minute late is little to a step
	// timed in minutes, and one query a minute is nothing to Alertmanager.
	heldRecheck = time.Minute
	// holdCheckTimeout bounds that question, well under stepTimeout, so
	// that an Alertmanager that does not answer leaves the step the time
	// to fire.
	holdCheckTimeout = 5 * time.Second
)

// RunTimers fires escalation steps as they come due, until ctx is done;
// then it waits for the steps under way. Every replica runs it; the store
// hands each due step to one of them. A step that came due while no
// replica ran fires at the first poll.
func (c *Core) RunTimers(ctx context.Context) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	slots := make(chan struct{}, maxFiring)
	var wg sync.WaitGroup
	defer wg.Wait()
	failing := false
	for {
		// Only this loop takes slots: the room it sees is there.
		if room := cap(slots) - len(slots); room > 0 {
			ids, err := c.store.Due(ctx, c.now(), room)
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				c.logger.Error("escalation timers cannot be read; retrying", "err", err)
				failing = true
			case err == nil:
				failing = false
			}
			for _, id := range ids {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() { <-slots }()
					sctx, cancel := context.WithTimeout(ctx, stepTimeout)
					defer cancel()
					c.escalate(sctx, id)
				})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stepRetries counts, per incident, the tries of its next step that failed
// in a row on this replica, for the wait before the next try. Every way
// out of escalate but a failure forgets the incident's count; one whose
// step another replica fired is forgotten when the counts are too many,
// all at once, which costs their steps a shorter wait.
type stepRetries struct {
	mu sync.Mutex
	n  map[string]int
}

const maxRetriesKept = 4096

// failed counts a failed try of id's step and returns the wait before the
// next.
func (r *stepRetries) failed(id string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil || len(r.n) >= maxRetriesKept {
		r.n = map[string]int{}
	}
	r.n[id]++
	wait := state.ClaimTTL
	for i := 1; i < r.n[id] && wait < maxRetryWait; i++ {
		wait *= 2
	}
	return min(wait, maxRetryWait)
}

func (r *stepRetries) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.n, id)
}

// heldSteps are the incidents whose step Alertmanager held at its last try
// on this replica, so that a hold is logged when it starts and when it
// ends, not at every recheck. Like stepRetries, they are all forgotten
// when they are too many, which costs a hold one more log line.
type heldSteps struct {
	mu  sync.Mutex
	ids map[string]bool
}

// hold remembers id as held and reports whether it was not already.
func (h *heldSteps) hold(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ids[id] {
		return false
	}
	if h.ids == nil || len(h.ids) >= maxRetriesKept {
		h.ids = map[string]bool{}
	}
	h.ids[id] = true
	return true
}

// release forgets id and reports whether it was held.
func (h *heldSteps) release(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.ids[id]
	delete(h.ids, id)
	return was
}

// escalation is the receiver's escalation policy if it applies to in:
// nil when the receiver has none, or its `when` does not match the group.
func escalation(rc *Receiver, in *incident.Incident) *config.Escalation {
	e := rc.Config.Escalation
	if e == nil || !e.Applies(webhook.LabelSet(in.CommonLabels)) {
		return nil
	}
	return e
}

// nextDue is when in's next step is due by e: its time after the first
// message, not before the end of a silence in force; zero when no step is
// left or the incident no longer escalates (resolved, acknowledged).
func (c *Core) nextDue(e *config.Escalation, in *incident.Incident) time.Time {
	if e == nil || !in.Open() || in.Ack != nil || in.Escalation.Step >= len(e.Steps) {
		return time.Time{}
	}
	due := in.FirstSent.Add(time.Duration(e.Steps[in.Escalation.Step].After))
	if in.Silenced(c.now()) && in.Silence.Until.After(due) {
		due = in.Silence.Until
	}
	return due
}

// reschedule keeps the store's timer of in as in says: its next step's
// time, or none. A failure is logged: the timer fires, or not, on what the
// record says when it does.
func (c *Core) reschedule(ctx context.Context, in *incident.Incident, logger *slog.Logger) error {
	var err error
	if in.Escalation.Due.IsZero() {
		err = c.store.Unschedule(ctx, in.ID)
	} else {
		err = c.store.Schedule(ctx, in.ID, in.Escalation.Due)
	}
	if err != nil {
		logger.Error("escalation timer not updated", "incident", in.ID, "due", in.Escalation.Due, "err", err)
	}
	return err
}

// escalate fires the step of incident id that came due, under its chain's
// lock: a reply in the chain that mentions the step's people, the step
// recorded, the buzz if the step asks for it, the root card showing the
// step, and the next step's timer. The reply is sent with the idempotency
// key of its attempt and recorded with the step, so that a crash between
// Feishu's accept and the record neither loses nor doubles it; the buzz,
// which has no such key, follows the record, so that it comes at most
// once, and never for a step not recorded.
func (c *Core) escalate(ctx context.Context, id string) {
	logger := c.logger.With("incident", id)
	chain := incident.ChainOf(id)
	unlock, err := c.store.Lock(ctx, chain)
	if err != nil {
		logger.Warn("escalation waits: chain not locked", "err", err)
		return // the claim runs out, and the step comes due again
	}
	defer unlock()
	in, err := c.store.Get(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		c.stepRetries.forget(id)
		c.heldSteps.release(id)
		_ = c.store.Unschedule(ctx, id)
		return
	}
	if err != nil {
		logger.Warn("escalation waits: incident not read", "err", err)
		return
	}
	pl := c.Pipeline()
	rc := pl.Receiver(in.Receiver)
	var e *config.Escalation
	if rc != nil {
		e = escalation(rc, in)
	}
	logger = logger.With("receiver", in.Receiver)
	due := c.nextDue(e, in)
	if due.IsZero() || due.After(c.now()) {
		// Acknowledged, silenced, resolved, or its policy changed by a
		// reload since it was scheduled.
		c.stepRetries.forget(id)
		c.heldSteps.release(id)
		in.Escalation.Due = due
		_ = c.reschedule(ctx, in, logger)
		return
	}
	n := in.Escalation.Step + 1
	if c.mutedInAlertmanager(ctx, rc, in, logger) {
		// Not a failure: the step fires once Alertmanager would notify
		// again, at the first recheck after.
		c.stepRetries.forget(id)
		if c.heldSteps.hold(id) {
			logger.Info("escalation held: the group's alerts are silenced or inhibited in Alertmanager", "step", n, "recheck_every", heldRecheck)
		}
		_ = c.store.Schedule(ctx, id, c.now().Add(heldRecheck))
		return
	}
	if c.heldSteps.release(id) {
		logger.Info("escalation no longer held: Alertmanager has alerts of the group that notify", "step", n)
	}
	if err := c.fireStep(ctx, rc, e, in, n, logger); err != nil {
		wait := c.stepRetries.failed(id)
		logger.Error("escalation step not fired; it is tried again", "step", n, "retry_in", wait, "err", err)
		// The failure may be the context's: the retry's time is written
		// with one of its own. If it cannot be, the claim runs out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forgetTimeout)
		defer cancel()
		_ = c.store.Schedule(rctx, id, c.now().Add(wait))
		return
	}
	c.stepRetries.forget(id)
	_ = c.reschedule(ctx, in, logger)
}

// mutedInAlertmanager reports whether Alertmanager mutes in's group: it
// holds the group's alerts, and every one is silenced or inhibited there
// (from its UI, with amtool). Alertmanager then sends nothing more
// for the group, its resolution included, so a step fired now would page
// people about an incident someone muted. It asks only receivers whose
// pipeline has Alertmanager's URLs; an Alertmanager that cannot answer
// lets the step fire, since a page too many is the safe side.
func (c *Core) mutedInAlertmanager(ctx context.Context, rc *Receiver, in *incident.Incident, logger *slog.Logger) bool {
	s := rc.pipeline.Silencer
	if s == nil {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, holdCheckTimeout)
	defer cancel()
	muted, err := s.Muted(qctx, actions.SilenceMatchers(in.GroupLabels, in.CommonLabels))
	if err != nil {
		logger.Warn("alertmanager did not say whether the group's alerts are muted; the escalation step fires", "err", err)
		return false
	}
	return muted
}

// escalationKey is the key a step is recorded as delivered under, beside
// the chain's notifications.
func escalationKey(id string, step int) string { return fmt.Sprintf("escalation:%s:%d", id, step) }

// fireStep sends step n's reply, unless an earlier try was recorded as
// delivered, records the step, then buzzes and shows the step on the root
// card.
func (c *Core) fireStep(ctx context.Context, rc *Receiver, e *config.Escalation, in *incident.Incident, n int, logger *slog.Logger) error {
	step := e.Steps[n-1]
	pl := rc.pipeline
	key := escalationKey(in.ID, n)
	loaded, err := c.store.Load(ctx, in.Chain, key)
	if err != nil {
		return err
	}
	reach := pl.Mentions.Reach(ctx, step.Mention)
	for _, u := range reach.Unresolved {
		c.unresolved.WithLabelValues(rc.Name(), u.Reason).Inc()
	}
	if !loaded.Delivered {
		if err := c.sendStep(ctx, rc, in, n, step, reach, key, loaded.Attempt, logger); err != nil {
			return err
		}
	}
	// The record says when the next step is due, as the timer will: a
	// restart finds it agreeing with the policy, and need not retime it.
	in.Escalation.Step, in.Escalation.Reached = n, reach.IDs
	in.Escalation.Due = c.nextDue(e, in)
	if err := c.store.Commit(ctx, state.Write{Incident: in, Notification: key, At: c.now()}); err != nil {
		// The next try resends the reply with the same uuid, and buzzes
		// once it is recorded.
		return fmt.Errorf("step sent but not recorded: %w", err)
	}
	// Counted once recorded, before the buzz and the card: what follows
	// the record may fail, and the step has fired all the same.
	c.escalations.WithLabelValues(rc.Name(), fmt.Sprint(n)).Inc()
	logger.Info("incident escalated", "step", n, "reached", strings.Join(reach.IDs, ","))
	if !loaded.Delivered {
		// After the record: a crash before it loses the buzz, never
		// repeats it. A store failing at every try must not have people
		// called again and again, on the tenant's quota.
		c.buzz(ctx, rc, in, step.UrgentKind(), reach.IDs, logger)
	}
	if updater, ok := rc.Sender.(feishu.CardUpdater); ok && c.cardState(rc, in) != nil {
		if card, err := c.rootCard(rc, in); err == nil {
			c.updateCard(ctx, updater, rc, in.Root, card, logger)
		}
	}
	return nil
}

// sendStep sends step n's reply in in's chain, as a new root when Feishu
// lost the chain's; an im/v1 reply with the uuid of attempt, the earlier
// try's, or a new one remembered first. When Feishu answered every send
// and took none, the uuid is forgotten: kept, a refusal of the next try
// would be taken for the answer to a reply made (see reusedUUIDAnswer).
func (c *Core) sendStep(ctx context.Context, rc *Receiver, in *incident.Incident, n int, step config.EscalationStep, reach oncall.Mentions, key, attempt string, logger *slog.Logger) error {
	msg, err := rc.pipeline.Renderer.EscalationReply(rc.Config, n, time.Duration(step.After), reach, step.UrgentKind())
	if err != nil {
		return err
	}
	msg.Target, msg.RootID = rc.Target, in.Root
	if rc.API == config.APIIMv1 {
		msg.UUID = attempt
		if msg.UUID == "" {
			msg.UUID = attemptUUID(key)
			if err := c.store.Begin(ctx, in.Chain, key, msg.UUID, c.now()); err != nil {
				return err
			}
		}
	}
	maybeSent := attempt != "" // an earlier try with this uuid may have made the reply
	id, err := rc.Sender.Send(ctx, msg)
	maybeSent = maybeSent || feishu.MayHaveSent(err)
	if msg.RootID != "" && feishu.Classify(err) == feishu.RootGone {
		logger.Info("chain root is gone on Feishu's side; the escalation starts a new chain", "root", msg.RootID)
		msg.RootID = ""
		if id, err = rc.Sender.Send(ctx, msg); err == nil {
			in.Root = id
		}
		maybeSent = maybeSent || feishu.MayHaveSent(err)
	}
	if err != nil && msg.UUID != "" && maybeSent && reusedUUIDAnswer(err) {
		logger.Warn("feishu refused the resend of an escalation whose earlier answer was lost: taken as sent", "uuid", msg.UUID, "err", err)
		c.degraded.WithLabelValues(rc.Name(), degradedUUID).Inc()
		err = nil
	}
	if err != nil {
		if msg.UUID != "" && !maybeSent {
			c.forgetAttempt(ctx, in.Chain, key, logger)
		}
		return err
	}
	if in.Root == "" && id != "" && !rc.Target.IsBot() {
		in.Root = id // a chain whose root's ID Feishu never gave has one now
	}
	return nil
}

// buzz calls the step's people on the root message with Feishu's urgent
// message. People Feishu will not buzz (not in the chat, outside the app's
// availability) are still mentioned by the reply; they are logged and
// counted. A failed buzz does not undo the step: the reply went.
func (c *Core) buzz(ctx context.Context, rc *Receiver, in *incident.Incident, kind string, ids []string, logger *slog.Logger) {
	buzzer, ok := rc.Sender.(feishu.Buzzer)
	var openIDs []string
	for _, id := range ids {
		if strings.HasPrefix(id, "ou_") { // the urgent API takes open_ids here
			openIDs = append(openIDs, id)
		}
	}
	if kind == config.UrgentNone || !ok || len(openIDs) == 0 || in.Root == "" {
		return
	}
	invalid, err := buzzer.Urgent(ctx, in.Root, kind, openIDs)
	if err != nil {
		c.buzzRefused.WithLabelValues(rc.Name(), kind).Add(float64(len(openIDs)))
		logger.Error("urgent call failed; the people are still mentioned", "kind", kind, "err", err)
		return
	}
	if len(invalid) > 0 {
		c.buzzRefused.WithLabelValues(rc.Name(), kind).Add(float64(len(invalid)))
		logger.Warn("feishu would not buzz some people (not in the chat, or outside the app's availability); they are still mentioned",
			"kind", kind, "open_ids", strings.Join(invalid, ","))
	}
}

// escalationsChanged names the receivers of p whose escalation could time
// their steps otherwise than old's: gained, lost, or with other matchers
// or steps' times. A step's people are read when it fires. With no old
// pipeline (the first), what the timers were set by is unknown: every
// receiver with an escalation counts.
func escalationsChanged(old, p *Pipeline) []string {
	var out []string
	for name, rc := range p.receivers {
		e := rc.Config.Escalation
		if old == nil {
			if e != nil {
				out = append(out, name)
			}
			continue
		}
		var was *config.Escalation
		if o := old.Receiver(name); o != nil {
			was = o.Config.Escalation
		}
		if timing(was) != timing(e) {
			out = append(out, name)
		}
	}
	return out
}

// timing is what of e sets when its steps are due, comparable.
func timing(e *config.Escalation) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	for _, m := range e.When {
		fmt.Fprintf(&b, "%q ", m)
	}
	b.WriteString("|")
	for _, s := range e.Steps {
		fmt.Fprintf(&b, " %d", s.After)
	}
	return b.String()
}

// retimeReceivers makes the timers of the receivers' open incidents follow
// the pipeline after a reload: a step moved earlier would otherwise fire
// at its old time, and an incident whose receiver gained an escalation
// would not escalate until its next notification. A step moved later, or
// one whose escalation went, needs nothing: its timer finds the step not
// due when it fires. Each incident is timed again under its chain's lock,
// from its record as it is then.
func (c *Core) retimeReceivers(ctx context.Context, receivers []string) {
	open, err := c.store.OpenIncidents(ctx, receivers...)
	if err != nil {
		c.logger.Warn("escalation timers not updated after a reload; steps keep their earlier times until their incidents' next notification",
			"receivers", strings.Join(receivers, ","), "err", err)
		return
	}
	for _, in := range open {
		if ctx.Err() != nil {
			return
		}
		rc := c.Pipeline().Receiver(in.Receiver)
		if rc == nil {
			continue
		}
		if due := c.nextDue(escalation(rc, in), in); due.IsZero() || due.Equal(in.Escalation.Due) {
			// Acknowledged, nothing left to fire, or the record's time
			// is the policy's already (every start of an unchanged
			// configuration): no lock needed.
			continue
		}
		c.retime(ctx, in.ID)
	}
}

// retime schedules incident id's next step as the pipeline has it, in
// its record and in the store's timers.
func (c *Core) retime(ctx context.Context, id string) {
	logger := c.logger.With("incident", id)
	unlock, err := c.store.Lock(ctx, incident.ChainOf(id))
	if err != nil {
		logger.Warn("escalation timer not updated after a reload: chain not locked", "err", err)
		return
	}
	defer unlock()
	in, err := c.store.Get(ctx, id)
	if err != nil {
		return // resolved and gone since it was listed, or the store failing: its timer finds out
	}
	rc := c.Pipeline().Receiver(in.Receiver)
	if rc == nil {
		return
	}
	due := c.nextDue(escalation(rc, in), in)
	if due.IsZero() || due.Equal(in.Escalation.Due) {
		return
	}
	// The record says the new time too, so that a later start, finding
	// record and policy agreeing, may leave the timer as it is.
	in.Escalation.Due = due
	if err := c.store.Commit(ctx, state.Write{Incident: in, At: c.now()}); err != nil {
		logger.Warn("escalation time not recorded after a reload; the timer follows the reload all the same", "err", err)
	}
	_ = c.reschedule(ctx, in, logger)
}
