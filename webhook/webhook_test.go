package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func readPayload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
	require.NoError(t, err)
	return b
}

// capturedPayloads lists the webhook bodies captured from Alertmanager.
func capturedPayloads(t testing.TB) []string {
	var files []string
	for _, pattern := range []string{"firing-*.json", "resolved-*.json"} {
		m, err := filepath.Glob(filepath.Join("..", "testdata", "alertmanager", pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	return files
}

func TestDecodeCapturedPayloads(t *testing.T) {
	files := capturedPayloads(t)
	require.Len(t, files, 10)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Decode(strings.NewReader(string(readPayload(t, filepath.Base(f)))))
			require.NoError(t, err)
			require.Equal(t, "4", p.Version)
			require.NotEmpty(t, p.GroupKey)
			require.NotEmpty(t, p.Alerts)
			for _, a := range p.Alerts {
				require.Len(t, a.Fingerprint, 16)
			}
			require.Equal(t, strings.HasPrefix(filepath.Base(f), "resolved"), p.Resolved())
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	p, err := Decode(strings.NewReader(string(readPayload(t, "firing-HighCPU-critical-max_alerts1.json"))))
	require.NoError(t, err)
	require.EqualValues(t, 1, p.TruncatedAlerts)
	require.Len(t, p.Alerts, 1)
	require.Equal(t, "host-a:9100", string(p.CommonLabelSet()["instance"]))
}

func TestDecodeRejects(t *testing.T) {
	valid := string(readPayload(t, "firing-HighCPU-seq1-first-notification.json"))
	for name, body := range map[string]string{
		"empty body":           "",
		"whitespace only":      "  \n",
		"malformed JSON":       `{"version":"4",`,
		"array":                `[1,2]`,
		"string":               `"hello"`,
		"null":                 `null`,
		"alerts of wrong type": strings.Replace(valid, `"alerts":[`, `"alerts":"x","ignored":[`, 1),
		"version 3":            strings.Replace(valid, `"version":"4"`, `"version":"3"`, 1),
		"no version":           strings.Replace(valid, `"version":"4",`, ``, 1),
		"no groupKey":          strings.Replace(valid, `"groupKey":`, `"otherKey":`, 1),
		"status pending":       strings.Replace(valid, `"status":"firing","alerts"`, `"status":"pending","alerts"`, 1),
		"alert status bad":     strings.Replace(valid, `"alerts":[{"status":"firing"`, `"alerts":[{"status":"active"`, 1),
		"no alerts":            `{"version":"4","groupKey":"k","status":"firing","alerts":[]}`,
		"trailing data":        valid + `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(body))
			var invalid *InvalidError
			require.ErrorAs(t, err, &invalid)
		})
	}
}

func TestDecodeInvalidUTF8(t *testing.T) {
	body := strings.Replace(string(readPayload(t, "firing-HighCPU-seq1-first-notification.json")),
		"CPU usage above 90%", "CPU \xff\xfe usage", 1)
	p, err := Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Contains(t, p.Alerts[0].Annotations["summary"], "\uFFFD")
}

func TestDecodeOldAlertmanagerWithoutNewFields(t *testing.T) {
	// Alertmanager 0.25 sends neither notification_reason nor routeLabels,
	// and very old ones no fingerprint.
	body := `{"receiver":"r","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":""}],"groupLabels":{},"commonLabels":{"alertname":"A"},"commonAnnotations":{},"externalURL":"http://am","version":"4","groupKey":"{}:{}","truncatedAlerts":0}`
	p, err := Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Len(t, p.Alerts[0].Fingerprint, 16)
}

func TestNotificationKey(t *testing.T) {
	decode := func(name string) *Payload {
		p, err := Decode(strings.NewReader(string(readPayload(t, name))))
		require.NoError(t, err)
		return p
	}
	seq1 := decode("firing-HighCPU-seq1-first-notification.json")
	again := decode("firing-HighCPU-seq1-first-notification.json")
	require.Equal(t, NotificationKey("infra", seq1), NotificationKey("infra", again))
	require.NotEqual(t, NotificationKey("infra", seq1), NotificationKey("dba", seq1), "the key is per receiver")

	// HA peers may differ in externalURL and notification reason.
	again.ExternalURL, again.NotificationReason = "http://other-peer:9093", "repeat interval elapsed"
	require.Equal(t, NotificationKey("infra", seq1), NotificationKey("infra", again))

	// Alert order does not matter.
	again.Alerts[0], again.Alerts[1] = again.Alerts[1], again.Alerts[0]
	require.Equal(t, NotificationKey("infra", seq1), NotificationKey("infra", again))

	keys := map[string]string{}
	for _, name := range []string{
		"firing-HighCPU-seq1-first-notification.json",
		"firing-HighCPU-seq2-new-alerts-added.json",
		"firing-HighCPU-seq3-some-alerts-resolved.json",
		"resolved-HighCPU-seq4-all-alerts-resolved.json",
	} {
		k := NotificationKey("infra", decode(name))
		require.NotContains(t, keys, k, "%s has the key of %s", name, keys[k])
		keys[k] = name
	}
}

// One resolution stamped with two endsAt, as HA peers whose alerts timed
// out on their own clocks send it, has two notification keys and one
// resolution key; another start or another alert is another resolution.
func TestResolutionKey(t *testing.T) {
	p, err := Decode(strings.NewReader(string(readPayload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))))
	require.NoError(t, err)
	peer := *p
	peer.Alerts = slices.Clone(p.Alerts)
	peer.Alerts[0].EndsAt = peer.Alerts[0].EndsAt.Add(300 * time.Millisecond)
	peer.Alerts[0], peer.Alerts[1] = peer.Alerts[1], peer.Alerts[0]
	require.NotEqual(t, NotificationKey("infra", p), NotificationKey("infra", &peer))
	require.Equal(t, ResolutionKey("infra", p), ResolutionKey("infra", &peer))
	require.NotEqual(t, ResolutionKey("infra", p), ResolutionKey("dba", p), "the key is per receiver")

	restarted := *p
	restarted.Alerts = slices.Clone(p.Alerts)
	restarted.Alerts[0].StartsAt = restarted.Alerts[0].StartsAt.Add(time.Minute)
	require.NotEqual(t, ResolutionKey("infra", p), ResolutionKey("infra", &restarted))

	fewer := *p
	fewer.Alerts = p.Alerts[1:]
	require.NotEqual(t, ResolutionKey("infra", p), ResolutionKey("infra", &fewer))
	require.NotEqual(t, ResolutionKey("infra", p), NotificationKey("infra", p))
}

func FuzzDecode(f *testing.F) {
	for _, name := range capturedPayloads(f) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing"}]}`))
	f.Add([]byte(`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","labels":{"a":"1"},"Labels":{"b":"\u00e9", "a" : "x"}}],` +
		`"commonLabels":{"a":"\xff","b":null},"groupLabels":null,"routeLabels":{"é":"\ud800"},"commonAnnotations":{"a":1}}`))
	for _, s := range []string{
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","startsAt":null,"labels":{"a":null},"endsAt":"2026-01-01T00:00:00.5+08:00"}],"truncatedAlerts":12}`,
		`{"st\u0061tus":"firing","version":"4","groupKey":"k\"\n","alerts":[{"status":"firing","fingerprint":"\u00e9\ud83d\ude00"}],"receiver":null,"externalURL":"\xff"}`,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing"}],"truncatedAlerts":01}`,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing"}],"truncatedAlerts":1e2}`,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing"}],"truncatedAlerts":18446744073709551616}`,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing"}],"version":"4"}`,
		`{"version":"4","groupKey":"k","Status":"firing","alerts":[{"status":"firing","Labels":{}}],"new":[1,{"a":null}]}`,
		` {"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","startsAt":"2026-13-01T00:00:00Z"}]} `,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[null,{"status":"firing"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Decode(strings.NewReader(string(body)))
		// Decoding is the same as encoding/json's into Payload, errors too.
		want, wantErr := decodeReference(body)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("decoded with error %v, encoding/json says %v", err, wantErr)
		}
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("decoded %+v, encoding/json says %+v", p, want)
		}
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("error of unexpected type %T: %v", err, err)
			}
			return
		}
		// Whatever was accepted is valid and yields a key.
		if p.Validate() != nil || len(NotificationKey("r", p)) != 64 {
			t.Fatalf("accepted an invalid payload: %+v", p)
		}
		requireKeysAsBefore(t, p)
	})
}
