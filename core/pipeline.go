package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/render"
	"github.com/alertmanager-feishu/alertmanager-feishu/route"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Pipeline is everything built from one routing.yaml. A reload replaces it
// whole; a notification uses the one it started with to the end.
type Pipeline struct {
	Config   *config.Config
	Route    *route.Route
	Renderer *render.Renderer
	Mentions *oncall.Policy
	// Token is the bearer token a webhook must carry; "" accepts any.
	Token string
	// Client is the app's Feishu client, shared by its receivers' senders.
	Client *feishu.Client
	// Silencer makes silences from cards; nil without actions or without
	// actions.alertmanager.urls (the cards then have no Silence buttons).
	Silencer *actions.Silencer

	receivers map[string]*Receiver
}

// Receiver is one receiver of a pipeline, ready to send: its target and
// the sender of its API, chosen when the pipeline was built.
type Receiver struct {
	Config *config.Receiver
	Target feishu.Target
	Sender feishu.Sender
	// API is what the sender speaks: config.APIIMv1, config.APIv4 or
	// feishu.APIBot.
	API      string
	pipeline *Pipeline
}

// Name is the receiver's name.
func (r *Receiver) Name() string { return r.Config.Name }

// RenderFirst renders the first message of a group for r as Notify sends
// it when the group's incident opens, as the incident called id: a root
// card shows the incident's state and buttons where r has them. The
// offline commands render through it, so that what they show is what is
// sent.
func (r *Receiver) RenderFirst(p *webhook.Payload, mentions oncall.Mentions, id string) (feishu.Message, error) {
	in := &incident.Incident{ID: id, State: incident.Firing}
	msg, err := r.pipeline.Renderer.RenderWith(p, r.Config, mentions, render.Options{Card: r.cardState(in, time.Time{})})
	msg.Target = r.Target
	return msg, err
}

// Receiver returns the receiver called name, or nil.
func (p *Pipeline) Receiver(name string) *Receiver { return p.receivers[name] }

// Routed returns the receivers named, in that order: those the route tree
// picked for a group.
func (p *Pipeline) Routed(names []string) []*Receiver {
	out := make([]*Receiver, 0, len(names))
	for _, n := range names {
		out = append(out, p.receivers[n])
	}
	return out
}

// PipelineOptions are what a pipeline is built with besides its
// configuration. The metrics and the pacer outlive a pipeline: a reload
// keeps them.
type PipelineOptions struct {
	Metrics *feishu.Metrics // nil: counted nowhere
	Pacer   *feishu.Pacer   // nil: a pacer of the configuration's own
	Logger  *slog.Logger
	// HTTPClient, when set, makes the Feishu calls instead of a client of
	// the configuration's: tests serve them in memory.
	HTTPClient *http.Client
	// Offline builds a pipeline for the commands that print what would be
	// sent: it reads no secret (each is a placeholder) and looks nobody up
	// in Feishu's contacts.
	Offline bool
}

// NewPipeline builds the pipeline of one configuration. Everything that can
// fail is done here, so that a bad file is refused before it is used: the
// templates of every receiver are executed once against a sample group,
// and every secret file is read. It reports every problem it finds, not
// only the first.
func NewPipeline(cfg *config.Config, o PipelineOptions) (*Pipeline, error) {
	if o.Metrics == nil {
		o.Metrics = feishu.NewMetrics(prometheus.NewRegistry())
	}
	if o.Pacer == nil {
		o.Pacer = feishu.NewPacer(cfg.Feishu.RateLimit, o.Metrics)
	}
	var problems []error
	renderer, err := render.New(cfg.Templates, cfg.Feishu.API, o.Logger)
	if err != nil {
		problems = append(problems, err)
	} else if err := renderer.Check(cfg.Receivers); err != nil {
		problems = append(problems, err)
	}
	read := func(secret func() (string, error), placeholder string) string {
		if o.Offline {
			return placeholder
		}
		s, err := secret()
		if err != nil {
			problems = append(problems, err)
		}
		return s
	}
	secret := read(cfg.Feishu.Secret, "<app_secret>")
	token := read(cfg.Intake.Token, "")
	if cfg.State.Backend == "redis" {
		read(cfg.State.Redis.Secret, "")
	}
	var fo []feishu.Option
	if o.HTTPClient != nil {
		fo = append(fo, feishu.WithHTTPClient(o.HTTPClient))
	}
	client, err := feishu.New(cfg.Feishu, secret, o.Metrics, o.Pacer, o.Logger, fo...)
	if err != nil {
		problems = append(problems, err)
	}
	var lookup oncall.Lookup = client
	switch {
	case o.Offline:
		lookup = offline{}
	case cfg.Feishu.AppID == "":
		lookup = nil // custom bots alone: nothing to look emails up with
	}
	mentions, err := oncall.NewPolicy(cfg.OnCall, lookup, o.Logger)
	if err != nil {
		problems = append(problems, err)
	}
	p := &Pipeline{
		Config: cfg, Route: route.New(cfg.Route), Renderer: renderer, Mentions: mentions, Token: token, Client: client,
		receivers: make(map[string]*Receiver, len(cfg.Receivers)),
	}
	if a := cfg.Actions; a != nil && len(a.Alertmanager.URLs) > 0 {
		if p.Silencer, err = actions.NewSilencer(a.Alertmanager.URLs, a.Alertmanager.HTTPConfig, o.Logger); err != nil {
			problems = append(problems, err)
		}
	}
	if a := cfg.Actions; a != nil && a.Transport == config.TransportHTTP {
		read(func() (string, error) { _, _, err := a.Secrets(); return "", err }, "")
	}
	for _, rc := range cfg.Receivers {
		r, err := p.newReceiver(rc, o.Offline)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		p.receivers[rc.Name] = r
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return p, nil
}

func (p *Pipeline) newReceiver(rc *config.Receiver, offline bool) (*Receiver, error) {
	kind, id := rc.Target()
	r := &Receiver{Config: rc, Target: feishu.Target{Kind: kind, ID: id}, pipeline: p}
	if p.Client == nil {
		return r, nil // the problem is reported already
	}
	switch {
	case rc.IsBot():
		hook, err := botWebhook(rc, offline)
		if err != nil {
			return nil, err
		}
		r.API, r.Sender = feishu.APIBot, p.Client.Bot(hook)
	case p.Config.Feishu.API == config.APIIMv1:
		r.API, r.Sender = config.APIIMv1, p.Client.IMv1()
	default:
		r.API, r.Sender = config.APIv4, p.Client.V4()
	}
	return r, nil
}

// nameTimeout bounds the wait for a person's name: a click is answered
// within Feishu's 3 s, with the open_id if the name is slow.
const nameTimeout = 500 * time.Millisecond

// name is the Feishu name of the person with openID, "" when Feishu does
// not tell it (the app lacks the contacts scope, or it is slow).
func (p *Pipeline) name(ctx context.Context, openID string) string {
	if p.Client == nil || openID == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, nameTimeout)
	defer cancel()
	name, err := p.Client.UserName(ctx, openID)
	if err != nil {
		return ""
	}
	return name
}

// botWebhook is a custom bot receiver's webhook, its files read; offline,
// placeholders that show where the URL and a signature go.
func botWebhook(rc *config.Receiver, offline bool) (feishu.Webhook, error) {
	if offline {
		w := feishu.Webhook{URL: "<webhook_url>"}
		if rc.Secret != "" || rc.SecretFile != "" {
			w.Secret = "<secret>"
		}
		return w, nil
	}
	url, secret, err := rc.Webhook()
	return feishu.Webhook{URL: url, Secret: secret}, err
}

// offline answers every email lookup with an error: the commands that
// print what would be sent run without Feishu.
type offline struct{}

func (offline) LookupEmails(context.Context, []string) (map[string]string, error) {
	return nil, fmt.Errorf("emails are not looked up without Feishu")
}
