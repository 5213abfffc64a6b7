#!/usr/bin/env bash
# Runs the README's Quick start as written, so that the two cannot drift:
# the commands between the quickstart:begin and quickstart:end markers, in a
# fresh clone of the current commit (what is committed, not the work tree),
# against the Feishu stand-in on loopback, within a time bound. Then it
# checks what they printed, and that the plain go build of the Quick start
# names its commit in --version.
#
# Two things differ from a reader's terminal, neither a command: the ports
# 9098 and 9099 are moved to free ones (in the commands and in the clone's
# examples/quickstart/routing.yaml), so that two runs on one machine do not
# collide; and a trap stops the commands' background jobs if a command
# fails before the last one stops them.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rev=$(git -C "$repo" rev-parse HEAD)
git clone -q --no-checkout "$repo" "$work/clone"
git -C "$work/clone" checkout -q "$rev"

doc="$work/clone/README.md"
if ! grep -q '<!-- quickstart:begin -->' "$doc"; then
	echo "quickstart: no <!-- quickstart:begin --> block in README.md" >&2
	exit 1
fi
# The README names the Go version go.mod asks for.
go_version=$(sed -n 's/^go //p' "$work/clone/go.mod")
if ! grep -q "Go $go_version" "$doc"; then
	echo "quickstart: README.md does not name Go $go_version, go.mod's version" >&2
	exit 1
fi

# The block: the lines of its fenced code, markers and fences dropped.
sed -n '/<!-- quickstart:begin -->/,/<!-- quickstart:end -->/p' "$doc" |
	sed -e '/<!-- quickstart:/d' -e '/^```/d' >"$work/commands"
for want in 127.0.0.1:9098 127.0.0.1:9099; do
	grep -q "$want" "$work/commands" || { echo "quickstart: the commands name no $want" >&2; exit 1; }
done

free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "quickstart: no free port" >&2
	return 1
}
service_port=$(free_port)
standin_port=$(free_port)
[ "$service_port" != "$standin_port" ] || standin_port=$(free_port)
ports=(-e "s/127\.0\.0\.1:9098/127.0.0.1:$service_port/g" -e "s/127\.0\.0\.1:9099/127.0.0.1:$standin_port/g")
sed -i "${ports[@]}" "$work/commands" "$work/clone/examples/quickstart/routing.yaml"

{
	echo "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT"
	echo "trap 'exit 143' TERM"
	cat "$work/commands"
	echo "wait || true" # the stand-in prints its last messages as it stops
} >"$work/run.sh"

echo "== quick start commands (ports $service_port and $standin_port)"
cat "$work/commands"
# A reader's machine builds with VCS stamping (Go's default); some build
# hosts turn it off in their go env.
status=0
(cd "$work/clone" && GOFLAGS=-buildvcs=auto timeout --kill-after=10 240 bash -euo pipefail "$work/run.sh") >"$work/out" 2>&1 || status=$?
echo "== what they printed"
cat "$work/out"
if [ "$status" -ne 0 ]; then
	echo "quickstart: the commands failed (exit $status)" >&2
	exit 1
fi

fail=0
expect() {
	if ! grep -qF -- "$1" "$work/out"; then
		echo "quickstart: missing from the output: $1" >&2
		fail=1
	fi
}
expect "receiver infra (chat_id oc_quickstart): firing test notification sent, message om_"
expect "receiver infra (chat_id oc_quickstart): resolved test notification sent, a reply to om_"
expect "── message 1 (im_v1, interactive) to chat_id oc_quickstart"
expect "[FIRING:1] AlertmanagerFeishuTest (info)"
expect "── message 2 (im_v1, interactive) to chat_id oc_quickstart, a reply to message 1"
expect "[RESOLVED] AlertmanagerFeishuTest (info)"
expect "── message 1 updated in place, now:"
expect '{"receivers":{"infra":"sent"}}'
expect "── message 3 (im_v1, interactive) to chat_id oc_quickstart"
expect "[FIRING:2] HighCPU"

# The Quick start's go build is a plain one: no ldflags.
version=$("$work/clone/alertmanager-feishu" --version 2>&1 | sed -n 1p)
echo "== $version"
case $version in
*"version  "* | *"version devel "*) echo "quickstart: a plain build has no version" >&2; fail=1 ;;
esac
case $version in
*"revision: $rev"*) ;;
*) echo "quickstart: a plain build does not name commit $rev" >&2; fail=1 ;;
esac
exit $fail
