package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// The first release kept a bare root per chain, where the incident record
// is now. Its state is read, and the file converted, so that an upgrade
// keeps replying to open chains and deduping recent resolutions.

// legacyBotPrefix marks what the first release stored for a custom bot's
// chain instead of a root, which a bot cannot have: when its first message
// went.
const legacyBotPrefix = "custom-bot-first-sent:"

// legacyChain is a chain value of the first release's file store.
type legacyChain struct {
	Root       string    `json:"root"`
	Resolution string    `json:"resolution,omitempty"`
	Updated    time.Time `json:"updated"`
}

// legacyIncident is the incident that a first-release chain stands for.
// What that release did not keep (the receiver, the group, the first send
// of an app's chain, the last notification) stays empty.
func legacyIncident(id, chain string, c legacyChain, state incident.State) *incident.Incident {
	in := &incident.Incident{ID: id, Chain: chain, Updated: c.Updated, State: state}
	if s, ok := strings.CutPrefix(c.Root, legacyBotPrefix); ok {
		in.FirstSent, _ = time.Parse(time.RFC3339Nano, s)
	} else {
		in.Root = c.Root
	}
	if state == incident.Resolved {
		in.Resolution = c.Resolution
	}
	return in
}

// legacyValue is what the first release kept for in under its chain's
// root key, or closed key once it resolved: the root, or a custom bot's
// first send, after the resolution of a closed one.
func legacyValue(in *incident.Incident) string {
	root := in.Root
	if root == "" {
		root = legacyBotPrefix + in.FirstSent.UTC().Format(time.RFC3339Nano)
	}
	if in.Open() {
		return root
	}
	return in.Resolution + " " + root
}

// legacyID names the incident that a first-release Redis value stands for.
// It is derived from the value, not drawn, so that every replica and every
// read agree on it until a commit stores the record under it.
func legacyID(chain, value string) string {
	h := sha256.Sum256([]byte("legacy\x00" + chain + "\x00" + value))
	return chain + "." + hex.EncodeToString(h[:16])
}
