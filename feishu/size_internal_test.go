package feishu

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// jsonStringSize counts what marshal writes, for every byte alone and for
// the characters it treats apart.
func TestJSONStringSize(t *testing.T) {
	cases := []string{"", "plain", "告警", "\u2028\u2029", "\xc0\xff\xed\xa0\x80", "\U0001F525", "<&>", string(utf8.RuneError)}
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"告")
	}
	cases = append(cases, strings.Join(cases, ""))
	for _, s := range cases {
		want, err := marshal(s)
		require.NoError(t, err)
		require.Equal(t, len(want), jsonStringSize(s), "%q", s)
	}
}

func FuzzJSONStringSize(f *testing.F) {
	f.Add("\"\\\x01\b\f\n\r\t\u2028\xc0告")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonStringSize(s); got != len(want) {
			t.Fatalf("jsonStringSize(%q) = %d, marshal wrote %d", s, got, len(want))
		}
	})
}
