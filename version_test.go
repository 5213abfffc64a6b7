package main

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
	"github.com/stretchr/testify/require"
)

func keepVersion(t *testing.T) {
	v, r, d := version.Version, version.Revision, version.BuildDate
	t.Cleanup(func() { version.Version, version.Revision, version.BuildDate = v, r, d })
}

// A plain go build sets none of the version variables: they come from what
// the toolchain recorded, the module's (pseudo-)version and the commit.
func TestVersionFromBuildInfo(t *testing.T) {
	keepVersion(t)
	version.Version, version.Revision, version.BuildDate = "", "", ""
	fillVersionFrom(&debug.BuildInfo{
		Main: debug.Module{Version: "v0.0.0-20261201181109-0af340628ff8+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0af340628ff81d0d5de5b031bd343aadb8aed343"},
			{Key: "vcs.time", Value: "2026-12-01T18:11:09Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	out := version.Print("alertmanager-feishu")
	require.Contains(t, out, "alertmanager-feishu, version v0.0.0-20261201181109-0af340628ff8+dirty (branch: , revision: 0af340628ff81d0d5de5b031bd343aadb8aed343-modified)")
	require.Contains(t, out, "build date:       2026-12-01T18:11:09Z")

	// Without a module version (go run, or no VCS), it says so rather than
	// nothing.
	version.Version, version.Revision, version.BuildDate = "", "", ""
	fillVersionFrom(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	require.Equal(t, "devel", version.Version)
}

// What the build's ldflags set is kept.
func TestVersionFromLdflagsKept(t *testing.T) {
	keepVersion(t)
	version.Version, version.Revision, version.BuildDate = "1.2.3", "abc", "20260101-00:00:00"
	fillVersionFrom(&debug.BuildInfo{
		Main:     debug.Module{Version: "v0.0.0-x"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "def"}, {Key: "vcs.time", Value: "t"}},
	})
	require.Equal(t, []string{"1.2.3", "abc", "20260101-00:00:00"}, []string{version.Version, version.Revision, version.BuildDate})
}
