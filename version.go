package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// fillVersion fills prometheus/common/version's variables that the build's
// ldflags did not set (a plain go build or go install sets none) from what
// the Go toolchain records in the binary: the module's version (a tag, or a
// pseudo-version of the commit), and the commit and its time.
func fillVersion() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	fillVersionFrom(bi)
}

func fillVersionFrom(bi *debug.BuildInfo) {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if version.Version == "" {
		switch v := bi.Main.Version; {
		case v != "" && v != "(devel)":
			version.Version = v
		default:
			version.Version = "devel"
		}
	}
	if version.Revision == "" {
		version.Revision = settings["vcs.revision"]
		if version.Revision != "" && settings["vcs.modified"] == "true" {
			version.Revision += "-modified"
		}
	}
	if version.BuildDate == "" {
		version.BuildDate = settings["vcs.time"]
	}
}
