#!/usr/bin/env bash
# Builds alertmanager and amtool of a pinned release from the Go module
# proxy into a cache outside the repository, for the end-to-end tests. The
# module ships no compiled UI (ui/app/dist is embedded), so a copy of it gets
# a placeholder page and is built through a replace directive in a scratch
# module: the project's own go.mod never sees Alertmanager's dependencies.
#
# Prints the directory holding the two binaries. A second run with the
# binaries in place does nothing.
set -euo pipefail

version=${ALERTMANAGER_VERSION:-v0.34.2}
cache=${ALERTMANAGER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/alertmanager-feishu}
out="$cache/alertmanager-$version"

if [ -x "$out/alertmanager" ] && [ -x "$out/amtool" ]; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

src=$(go mod download -json "github.com/prometheus/alertmanager@$version" |
	sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "module github.com/prometheus/alertmanager@$version not downloaded" >&2; exit 1; }
cp -r "$src" "$work/am" && chmod -R u+w "$work/am"
mkdir -p "$work/am/ui/app/dist"
echo '<!doctype html><title>Alertmanager UI not built</title>' >"$work/am/ui/app/dist/index.html"

mkdir "$work/build"
cd "$work/build"
go mod init example.com/build-alertmanager >/dev/null 2>&1
go mod edit -require="github.com/prometheus/alertmanager@$version" \
	-replace=github.com/prometheus/alertmanager=../am
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus/alertmanager/cmd/alertmanager"
	_ "github.com/prometheus/alertmanager/cmd/amtool"
)
GO
go mod tidy >/dev/null 2>&1

ld="-X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Revision=$version"
mkdir -p "$out.tmp"
go build -trimpath -ldflags "$ld" -o "$out.tmp/alertmanager" github.com/prometheus/alertmanager/cmd/alertmanager
go build -trimpath -ldflags "$ld" -o "$out.tmp/amtool" github.com/prometheus/alertmanager/cmd/amtool
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
