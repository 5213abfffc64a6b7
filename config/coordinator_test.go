package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
)

const coordinated = `
feishu: {app_id: cli_x, app_secret: s}
receivers: [{name: %s, chat_id: oc_1}]
route: {receiver: %s}
`

func writeRouting(t *testing.T, file, receiver string) {
	t.Helper()
	yaml := strings.ReplaceAll(coordinated, "%s", receiver)
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
}

// The subscribers are told in order; the first that refuses ends the
// reload, leaving the configuration loaded last in force, and the
// metrics say so.
func TestCoordinatorReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routing.yaml")
	reg := prometheus.NewPedanticRegistry()
	c := NewCoordinator(file, reg, promslog.NewNopLogger())
	require.Nil(t, c.Config(), "nothing loaded yet")

	var told []string
	refuse := errors.New("refused by the second")
	refusing := false
	c.Subscribe(
		func(cfg *Config) error { told = append(told, "first:"+cfg.Receivers[0].Name); return nil },
		func(cfg *Config) error {
			told = append(told, "second:"+cfg.Receivers[0].Name)
			if refusing {
				return refuse
			}
			return nil
		},
		func(cfg *Config) error { told = append(told, "third:"+cfg.Receivers[0].Name); return nil },
	)

	writeRouting(t, file, "a")
	require.NoError(t, c.Reload())
	require.Equal(t, []string{"first:a", "second:a", "third:a"}, told)
	require.Equal(t, "a", c.Config().Receivers[0].Name)
	require.InDelta(t, 1, testutil.ToFloat64(c.successful), 0)
	okAt := testutil.ToFloat64(c.lastOK)
	require.Positive(t, okAt)

	told = nil
	refusing = true
	writeRouting(t, file, "b")
	require.ErrorIs(t, c.Reload(), refuse)
	require.Equal(t, []string{"first:b", "second:b"}, told, "the third is not told of a refused configuration")
	require.Equal(t, "a", c.Config().Receivers[0].Name, "the last loaded stays in force")
	require.InDelta(t, 0, testutil.ToFloat64(c.successful), 0)
	require.InDelta(t, okAt, testutil.ToFloat64(c.lastOK), 0)

	told = nil
	require.NoError(t, os.WriteFile(file, []byte("receivers: [\n"), 0o600))
	require.Error(t, c.Reload())
	require.Empty(t, told, "a file that does not load reaches no subscriber")
	require.Equal(t, "a", c.Config().Receivers[0].Name)

	told = nil
	refusing = false
	writeRouting(t, file, "c")
	require.NoError(t, c.Reload())
	require.Equal(t, []string{"first:c", "second:c", "third:c"}, told)
	require.Equal(t, "c", c.Config().Receivers[0].Name)
	require.InDelta(t, 1, testutil.ToFloat64(c.successful), 0)
}
