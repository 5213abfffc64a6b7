package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/render"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Status is how a notification went at one receiver.
type Status string

// The statuses, as the notifications metric counts them.
const (
	Sent    Status = "sent"
	Deduped Status = "deduped" // an exact repeat of one already delivered
	Failed  Status = "failed"
)

// Outcome is how one notification went at one receiver.
type Outcome struct {
	Status Status
	// Permanent says a failure will repeat until the configuration or
	// Feishu changes: Alertmanager should not hammer, but re-send at its
	// next group_interval. Otherwise a failure may pass, and Alertmanager
	// should retry soon.
	Permanent bool
	Err       error
}

func (o Outcome) class() string {
	if o.Permanent {
		return "permanent"
	}
	return "transient"
}

// Notification is one webhook of Alertmanager's, decoded.
type Notification struct {
	Payload *webhook.Payload
	// Key is webhook.NotificationKey at the receiver it is delivered to.
	Key string
	// Body is the webhook as posted, kept in the incident for its card to
	// be rendered again; nil keeps none.
	Body []byte
}

// forgetTimeout bounds the write that forgets a refused attempt's uuid,
// made when the delivery's own time may be up.
const forgetTimeout = 2 * time.Second

// maxKeptBody bounds the webhook body an incident keeps: a huge group's
// card shows only what fits in Feishu's limit anyway.
const maxKeptBody = 1 << 20

// Notify delivers n to rc unless it was delivered already, keeping the
// group's incident and its reply chain: under the chain's lock it loads the
// incident, decides whether the notification is news, renders and sends it
// (replying to the root, or starting a chain again when Feishu lost the
// root), and commits the incident with the notification as delivered.
func (c *Core) Notify(ctx context.Context, rc *Receiver, n Notification) (out Outcome) {
	p := n.Payload
	chain := state.ChainKey(rc.Name(), rc.Target.String(), p.GroupKey)
	logger := c.logger.With("receiver", rc.Name(), "group_key", p.GroupKey, "status", p.Status)
	defer func() { c.count(rc, out, logger) }()

	// One notification of a group at a time: two concurrent first
	// notifications must not both become a root.
	unlock, err := c.store.Lock(ctx, chain)
	if err != nil {
		return transient(fmt.Errorf("lock group: %w", err))
	}
	defer unlock()

	d, err := c.decide(ctx, rc, chain, n, logger)
	if err != nil {
		return transient(err)
	}
	if d == nil {
		return Outcome{Status: Deduped}
	}
	msg, err := c.prepare(ctx, rc, d, n)
	if err != nil {
		return failed(err)
	}
	msgID, err := c.send(ctx, rc, d, n, &msg, logger)
	if err != nil {
		if msg.UUID != "" && !d.maybeSent {
			c.forgetAttempt(ctx, d.chain, n.Key, logger)
		}
		return failed(err)
	}
	if err := c.commit(ctx, rc, d, n, msgID); err != nil {
		// Feishu has the message but the state does not. A 200 now would
		// leave the chain and the dedupe key unrecorded for good; a 503
		// lets Alertmanager's retry record them, at the risk of a second
		// copy of this message on v4, which has no idempotency key.
		return transient(fmt.Errorf("message %s sent but not recorded: %w", msgID, err))
	}
	if err := c.keepTimer(ctx, d, logger); err != nil {
		// The escalation would never fire. Alertmanager's retry finds the
		// notification delivered, and schedules it again.
		return transient(fmt.Errorf("message %s sent but its escalation not scheduled: %w", msgID, err))
	}
	logger.Debug("notification delivered", "message_id", msgID, "root", d.incident.Root)
	if p.Resolved() && d.replied {
		c.updateRoot(ctx, rc, d.incident, msg, logger)
	}
	return Outcome{Status: Sent}
}

// delivery is what Notify decided about one notification.
type delivery struct {
	chain    string
	incident *incident.Incident // the incident the notification belongs to
	fresh    bool               // the notification opens the incident: it is not stored yet
	due      time.Time          // when the incident's next step was due before the notification
	attempt  string             // an earlier attempt's idempotency key
	replied  bool               // the message went as a reply to the incident's root
	// maybeSent says an attempt with the message's uuid may have made it:
	// an earlier notification's attempt left its uuid, or a send's answer
	// was lost.
	maybeSent bool
	// mentions and opts are what the message was rendered with, for
	// rendering it again when Feishu refuses it or its root is gone.
	mentions oncall.Mentions
	opts     render.Options
}

// decide loads the chain and says how n is delivered; nil when it is no
// news: delivered already, or an HA peer's copy of the resolution that
// closed the chain.
func (c *Core) decide(ctx context.Context, rc *Receiver, chain string, n Notification, logger *slog.Logger) (*delivery, error) {
	loaded, err := c.store.Load(ctx, chain, n.Key)
	if err != nil {
		return nil, err
	}
	if loaded.Delivered {
		logger.Debug("notification already delivered")
		if in := loaded.Incident; in != nil && !in.Escalation.Due.IsZero() {
			// A retry after the timer could not be kept: keep it now.
			if err := c.reschedule(ctx, in, logger); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	d := &delivery{chain: chain, incident: loaded.Incident, attempt: loaded.Attempt}
	if d.incident == nil && loaded.Closed != nil && n.Payload.Resolved() {
		if loaded.Closed.Resolution == webhook.ResolutionKey(rc.Name(), n.Payload) {
			logger.Debug("group already resolved by the same alerts with another endsAt")
			return nil, nil
		}
		// A late resolution of other alerts still belongs to the incident
		// it ends.
		d.incident = loaded.Closed
	}
	if d.incident == nil {
		// A new chain: its incident is known from here on, so that the
		// root card's buttons can name it.
		d.incident, d.fresh = incident.New(chain, c.now()), true
	}
	d.due = d.incident.Escalation.Due
	return d, nil
}

// prepare renders the message: mentions decided by policy, a custom bot's
// later messages naming when its first went, and an im/v1 send's
// idempotency key remembered before it is used.
func (c *Core) prepare(ctx context.Context, rc *Receiver, d *delivery, n Notification) (feishu.Message, error) {
	pl := rc.pipeline
	d.mentions = pl.Mentions.For(ctx, rc.Config, n.Payload)
	for _, u := range d.mentions.Unresolved {
		c.unresolved.WithLabelValues(rc.Name(), u.Reason).Inc()
	}
	switch {
	case d.fresh:
		d.opts.Card = c.cardState(rc, d.incident) // the root card shows the incident
	case rc.Target.IsBot(), d.incident.Root == "":
		// A custom bot cannot reply, and a chain whose root's ID Feishu
		// never gave (see reusedUUIDAnswer) has nothing to reply to: the
		// message names when the first went.
		d.opts.FirstSent = d.incident.FirstSent
	}
	msg, err := pl.Renderer.RenderWith(n.Payload, rc.Config, d.mentions, d.opts)
	if err != nil {
		return msg, permanent(err)
	}
	msg.Target = rc.Target
	if rc.Target.IsBot() {
		return msg, nil // a custom bot can neither reply nor dedupe
	}
	msg.RootID = d.incident.Root
	if rc.API == config.APIIMv1 {
		// The uuid is remembered before the send, so that a retry after a
		// crash or a timeout, when Feishu may have the message already,
		// sends with the same one and Feishu keeps a single message.
		msg.UUID = d.attempt
		if msg.UUID == "" {
			msg.UUID = attemptUUID(n.Key)
			if err := c.store.Begin(ctx, d.chain, n.Key, msg.UUID, c.now()); err != nil {
				return msg, err
			}
		}
	}
	return msg, nil
}

// send sends msg, and when Feishu refuses it, does what can be done about
// the refusal and sends once more, each at most once: without its mentions
// when they were the reason (one person Feishu cannot mention, an open_id
// of another app say, or a chat without @all, must not keep the alert from
// everyone), smaller when its size was (Feishu does not say how it counts
// its limits), and as a new root when the root it replies to is gone or
// refused for a reason other than the configuration (a chain whose replies
// are refused would otherwise fail every later notification of the group,
// its resolution included, and never close; a refusal the configuration
// causes would meet the new root too, so it fails as it is). Each is
// logged, counted, and visible in the message. An im/v1 resend refused
// after an earlier attempt's answer was lost is taken as delivered: see
// reusedUUIDAnswer.
func (c *Core) send(ctx context.Context, rc *Receiver, d *delivery, n Notification, msg *feishu.Message, logger *slog.Logger) (string, error) {
	var tried struct{ mentions, size, root bool }
	d.maybeSent = d.attempt != "" // an earlier attempt with this uuid may have made the message
	api := rc.API
	if rc.Target.IsBot() {
		api = feishu.APIBot
	}
	for {
		msgID, err := rc.Sender.Send(ctx, *msg)
		d.replied = msg.RootID != ""
		if err == nil {
			return msgID, nil
		}
		d.maybeSent = d.maybeSent || feishu.MayHaveSent(err)
		var fe *feishu.Error
		errors.As(err, &fe)
		degraded := "" // the reason the next send is lesser, for the metric
		switch {
		case msg.UUID != "" && d.maybeSent && reusedUUIDAnswer(err):
			// What Feishu answers a uuid that made its message already is
			// not documented. After a lost answer, a refusal that is none
			// of those it documents for a message it did not take is most
			// likely that answer: reporting a failure would have
			// Alertmanager retry a delivered message for an hour, and
			// then post it twice.
			logger.Warn("feishu refused the resend of a message whose earlier answer was lost: taken as delivered, its message ID unknown",
				"uuid", msg.UUID, "code", fe.Code, "err", err)
			c.degraded.WithLabelValues(rc.Name(), degradedUUID).Inc()
			return "", nil
		case !tried.mentions && mentionRefused(err) && (len(d.mentions.IDs) > 0 || d.mentions.All):
			tried.mentions = true
			logger.Warn("message refused for its mentions, sending it with them named in plain text", "code", fe.Code, "mentions", len(d.mentions.IDs), "all", d.mentions.All, "err", err)
			for range d.mentions.IDs {
				c.unresolved.WithLabelValues(rc.Name(), reasonRefused).Inc()
			}
			if d.mentions.All {
				c.unresolved.WithLabelValues(rc.Name(), reasonAllRefused).Inc()
			}
			d.mentions = d.mentions.Unmentioned(reasonRefused)
		case !tried.size && sizeRefused(err):
			tried.size = true
			d.opts.MaxBytes = render.MaxBytes(api, msg.Type) / retrySizeShare
			logger.Warn("message refused for its size, sending it again cut smaller", "code", fe.Code, "max_bytes", d.opts.MaxBytes, "err", err)
			degraded = degradedSize
		case !tried.root && msg.RootID != "" && rootRefused(err, msg.RootID, logger):
			tried.root = true
			msg.RootID = ""
			// The new root shows the incident, as the old one did, and
			// says which message it follows.
			d.opts.Card, d.opts.FirstSent = c.cardState(rc, d.incident), d.incident.FirstSent
			degraded = degradedRoot
		default:
			return "", sendError(err)
		}
		again, rerr := rc.pipeline.Renderer.RenderWith(n.Payload, rc.Config, d.mentions, d.opts)
		if rerr != nil {
			return "", sendError(err)
		}
		again.Target, again.RootID, again.UUID = msg.Target, msg.RootID, msg.UUID
		if degraded == degradedSize && feishu.Footprint(api, again) >= feishu.Footprint(api, *msg) {
			// Nothing left to cut: the refusal was not the size after all.
			return "", sendError(err)
		}
		if degraded != "" {
			c.degraded.WithLabelValues(rc.Name(), degraded).Inc()
		}
		*msg = again
	}
}

// retrySizeShare is how much smaller than the budget a message goes after
// Feishu refused it for its size: its count is not the service's by far
// more than the margin, so the second try leaves a wide one.
const retrySizeShare = 4

// Reasons of the degraded metric.
const (
	degradedSize = "size"
	degradedRoot = "root_gone"
	degradedUUID = "uuid_reused"
)

// rootRefused says whether a reply's refusal means the chain must start
// again: its root gone on Feishu's side, or the reply refused for good for
// a reason other than the configuration. Only Feishu's answer counts: a
// request this service could not make would fail as a new root too.
func rootRefused(err error, root string, logger *slog.Logger) bool {
	var fe *feishu.Error
	switch class := feishu.Classify(err); {
	case class == feishu.RootGone:
		logger.Info("chain root is gone on Feishu's side, starting a new chain", "root", root, "err", err)
	case class == feishu.Permanent && !feishu.ConfigurationError(err) && errors.As(err, &fe):
		logger.Warn("reply to the chain root refused for good, starting a new chain", "root", root, "code", fe.Code, "err", err)
	default:
		return false
	}
	return true
}

// sizeRefused says whether Feishu refused a message for its size: im/v1's
// 230025, the generic 19036 (message/v4/send names it, and a custom bot
// may answer it), and a custom bot's 9499, its answer to a body over 20
// KB as to one it cannot read.
func sizeRefused(err error) bool {
	var fe *feishu.Error
	if !errors.As(err, &fe) || fe.Err != nil {
		return false
	}
	switch fe.Code {
	case 230025, 19036:
		return true
	case 9499:
		return fe.Endpoint == feishu.EndpointBot
	}
	return false
}

// reusedUUIDAnswer says whether err may be Feishu's answer to a uuid that
// made its message already, which Feishu does not document: a refusal it
// answered, for good, that is none of those it documents for a message it
// did not take (the configuration, the size, the mentions, the card's
// content) and does not concern a reply's root. Sent after an attempt
// whose answer was lost, such a refusal is taken as that answer.
func reusedUUIDAnswer(err error) bool {
	var fe *feishu.Error
	if !errors.As(err, &fe) || fe.Err != nil || fe.Code == 0 {
		return false
	}
	return feishu.Classify(err) == feishu.Permanent && !feishu.ConfigurationError(err) &&
		!sizeRefused(err) && !mentionRefused(err) && fe.Code != 230099
}

// Reasons of the unresolved mentions metric for mentions Feishu refused.
const (
	reasonRefused    = "refused"
	reasonAllRefused = "all_refused"
)

// mentionRefused says whether Feishu refused a message for its mentions: a
// card with an open_id it does not know (230099, sub-code 100290 "invalid
// user resource") or with @all in a chat whose owner has not enabled it
// (230099; Feishu documents the failure but not its message, taken to name
// @all), and v4 text or post with @all there (11235).
func mentionRefused(err error) bool {
	var fe *feishu.Error
	if !errors.As(err, &fe) || fe.Err != nil {
		return false
	}
	switch fe.Code {
	case 11235:
		return true
	case 230099:
		return strings.Contains(fe.Msg, "100290") || strings.Contains(fe.Msg, "@all")
	}
	return false
}

// commit records the incident as the delivery left it (opening it if the
// notification started a chain) and the notification as delivered, at
// once.
func (c *Core) commit(ctx context.Context, rc *Receiver, d *delivery, n Notification, msgID string) error {
	now := c.now()
	in := d.incident
	if !d.replied && !rc.Target.IsBot() {
		in.Root = msgID // a new chain, or one whose root Feishu lost
	}
	p := n.Payload
	in.Receiver, in.Target, in.GroupKey = rc.Name(), rc.Target.String(), p.GroupKey
	in.GroupLabels, in.CommonLabels = nil, nil
	if acts(rc) {
		in.GroupLabels, in.CommonLabels = p.GroupLabels, p.CommonLabels
	}
	in.Updated = now
	in.Last = nil
	if len(n.Body) <= maxKeptBody && keepsLast(rc) {
		in.Last = n.Body
	}
	in.State, in.Resolution = incident.Firing, ""
	if p.Resolved() {
		in.State, in.Resolution = incident.Resolved, webhook.ResolutionKey(rc.Name(), p)
	}
	// The incident's first message starts its escalation; a resolution
	// ends it. By the policy in force now: a reload since this
	// notification took its pipeline has retimed the open incidents, or
	// waits for this chain's lock to, and must not be undone by this
	// commit.
	policy := rc
	if pl := c.Pipeline(); pl != nil && pl.Receiver(rc.Name()) != nil {
		policy = pl.Receiver(rc.Name())
	}
	in.Escalation.Due = c.nextDue(escalation(policy, in), in)
	return c.store.Commit(ctx, state.Write{Incident: in, Notification: n.Key, At: now})
}

// keepTimer makes the store's timer of the incident agree with the record
// just committed, where the notification changed when its next step is due:
// a new incident with a policy, or one that resolved with a step pending.
func (c *Core) keepTimer(ctx context.Context, d *delivery, logger *slog.Logger) error {
	if d.incident.Escalation.Due.Equal(d.due) {
		return nil
	}
	err := c.reschedule(ctx, d.incident, logger)
	if d.incident.Escalation.Due.IsZero() {
		return nil // a timer left behind finds the incident resolved, and goes
	}
	return err
}

// updateRoot shows a resolved group on its chain's root card, so that the
// chat shows at a glance which incidents are still open; with actions, the
// card keeps who acknowledged and silenced it, without buttons. It is a
// courtesy: the notification is delivered whether it works or not.
func (c *Core) updateRoot(ctx context.Context, rc *Receiver, in *incident.Incident, msg feishu.Message, logger *slog.Logger) {
	card, ok := msg.Content.(feishu.Card)
	updater, can := rc.Sender.(feishu.CardUpdater)
	if !ok || !can {
		return
	}
	if c.cardState(rc, in) != nil {
		if root, err := c.rootCard(rc, in); err == nil {
			card = root
		}
	}
	c.updateCard(ctx, updater, rc, in.Root, card, logger)
}

// count records the outcome in the metrics and the log.
func (c *Core) count(rc *Receiver, out Outcome, logger *slog.Logger) {
	c.notifications.WithLabelValues(rc.Name(), string(out.Status)).Inc()
	if out.Err == nil {
		return
	}
	c.failures.WithLabelValues(rc.Name(), out.class()).Inc()
	attrs := []any{"target", rc.Target.String(), "class", out.class(), "err", out.Err}
	var fe *feishu.Error
	if errors.As(out.Err, &fe) {
		attrs = append(attrs, "code", fe.Code, "log_id", fe.LogID)
	}
	logger.Error("notification not delivered", attrs...)
}

// permanentError marks an error that will repeat until the configuration
// or Feishu changes. Any other error may pass.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// sendError classifies a send's failure for the answer. A second token
// rejection, or a root missing without a chain, is not the operator's to
// fix: Alertmanager may retry those.
func sendError(err error) error {
	if feishu.Classify(err) == feishu.Permanent {
		return permanent(err)
	}
	return err
}

func failed(err error) Outcome {
	var pe permanentError
	if errors.As(err, &pe) {
		return Outcome{Status: Failed, Permanent: true, Err: pe.error}
	}
	return Outcome{Status: Failed, Err: err}
}

func transient(err error) Outcome { return Outcome{Status: Failed, Err: err} }

// forgetAttempt forgets the idempotency key of an attempt at notification
// that Feishu answered at every send, taking none: the uuid made nothing,
// and the next attempt takes a new one. Kept, a refusal of the next would
// look like the answer to a message made (see reusedUUIDAnswer).
func (c *Core) forgetAttempt(ctx context.Context, chain, notification string, logger *slog.Logger) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forgetTimeout)
	defer cancel()
	if err := c.store.Begin(fctx, chain, notification, "", c.now()); err != nil {
		logger.Warn("idempotency key of a refused attempt not forgotten", "err", err)
	}
}

// attemptUUID is the idempotency key of one attempt at a notification: the
// start of the notification key, so that logs and Feishu's side can be
// matched up, and a random part, so that a later repeat of the same
// notification (after the dedupe window) is a new message to Feishu.
func attemptUUID(key string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return key[:32] + "-" + hex.EncodeToString(b)
}
