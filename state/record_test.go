package state

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// A record comes back whole whatever its body holds, newlines included,
// and with no body at all.
func TestRecordRoundTrip(t *testing.T) {
	in := full("chain", now())
	for _, last := range [][]byte{nil, []byte("{\n  \"status\": \"firing\"\n}\n"), in.Last} {
		in.Last = last
		b, err := encodeRecord(in)
		require.NoError(t, err)
		got, err := decodeRecord(b)
		require.NoError(t, err)
		require.Equal(t, in, got)
	}

	// Plain JSON, Last and all, reads too.
	b, err := json.Marshal(in)
	require.NoError(t, err)
	got, err := decodeRecord(b)
	require.NoError(t, err)
	require.Equal(t, in, got)
}
