package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parse takes every body Alertmanager was seen to send, as encoding/json
// decodes it.
func TestParseTakesWhatAlertmanagerSends(t *testing.T) {
	for _, name := range capturedPayloads(t) {
		body, err := os.ReadFile(name)
		require.NoError(t, err)
		want, err := decodeReference(body)
		require.NoError(t, err, name)
		got, err := DecodeBytes(body)
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
		_, ok := parse(body)
		require.True(t, ok, name)
	}
}

// referenceKey is NotificationKey (full) or ResolutionKey as first
// written: the keys are stored, so hashSorted must give the same.
func referenceKey(head []string, p *Payload, full bool) string {
	alerts := make([]string, len(p.Alerts))
	for i, a := range p.Alerts {
		if full {
			alerts[i] = a.Fingerprint + "\x00" + a.Status + "\x00" + formatTime(a.StartsAt) + "\x00" + formatTime(a.EndsAt)
		} else {
			alerts[i] = a.Fingerprint + "\x00" + formatTime(a.StartsAt)
		}
	}
	sort.Strings(alerts)
	h := sha256.New()
	for _, s := range append(head, alerts...) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// requireKeysAsBefore holds both keys of p to their reference.
func requireKeysAsBefore(t testing.TB, p *Payload) {
	t.Helper()
	require.Equal(t, referenceKey([]string{"infra", p.GroupKey, p.Status}, p, true), NotificationKey("infra", p))
	require.Equal(t, referenceKey([]string{"resolution", "infra", p.GroupKey}, p, false), ResolutionKey("infra", p))
}

func TestKeysAsBefore(t *testing.T) {
	for _, name := range capturedPayloads(t) {
		body, err := os.ReadFile(name)
		require.NoError(t, err)
		p, err := DecodeBytes(body)
		require.NoError(t, err)
		requireKeysAsBefore(t, p)
		p.Alerts[0].Fingerprint, p.Alerts[0].StartsAt = "\x00é", time.Date(2026, 1, 1, 0, 0, 0, 123, time.FixedZone("x", 3600))
		requireKeysAsBefore(t, p)
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
