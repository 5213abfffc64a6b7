package webhook

import (
	"os"
	"testing"

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
