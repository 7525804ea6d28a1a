#!/usr/bin/env bash
# gen-proto.sh regenerates internal/gen from proto/ with pinned tools.
#
#   scripts/gen-proto.sh           lint proto/ and rewrite internal/gen
#   scripts/gen-proto.sh --check   lint proto/, generate into a temp dir and
#                                  exit 1, listing the files, when the
#                                  committed internal/gen differs (CI runs this)
#
# buf, protoc-gen-go and protoc-gen-connect-go are installed into
# $(go env GOPATH)/bin when missing or at another version, and that directory
# is put first on PATH so buf's local plugins resolve to the pinned binaries:
# a different plugin version would produce different (stale-looking) code.
set -euo pipefail

readonly BUF_VERSION=1.75.0
readonly PROTOC_GEN_GO_VERSION=1.36.12
readonly PROTOC_GEN_CONNECT_GO_VERSION=1.21.1

usage() {
	echo "usage: $0 [--check]" >&2
	exit 2
}

check=false
case "${1-}" in
"") ;;
--check) check=true ;;
*) usage ;;
esac
[[ $# -le 1 ]] || usage

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

# ensure_tool NAME VERSION PACKAGE installs PACKAGE@vVERSION unless NAME on
# PATH already reports VERSION. All three tools print their version with
# --version ("1.75.0", "protoc-gen-go v1.36.12", "1.21.1").
ensure_tool() {
	local name=$1 version=$2 pkg=$3 have=""
	if command -v "$name" >/dev/null 2>&1; then
		have="$("$name" --version 2>/dev/null || true)"
	fi
	if [[ "$have" =~ (^|[[:space:]v])"$version"$ ]]; then
		return
	fi
	echo "gen-proto: installing $pkg@v$version into $gobin" >&2
	# go install will not overwrite a file it did not build.
	rm -f "$gobin/$name"
	GOBIN="$gobin" GOFLAGS= go install "$pkg@v$version"
}

ensure_tool buf "$BUF_VERSION" github.com/bufbuild/buf/cmd/buf
ensure_tool protoc-gen-go "$PROTOC_GEN_GO_VERSION" google.golang.org/protobuf/cmd/protoc-gen-go
ensure_tool protoc-gen-connect-go "$PROTOC_GEN_CONNECT_GO_VERSION" connectrpc.com/connect/cmd/protoc-gen-connect-go

(cd proto && buf lint)

if ! $check; then
	# clean: true in buf.gen.yaml empties internal/gen first, so generated
	# files of deleted .proto files do not linger.
	buf generate --template proto/buf.gen.yaml
	exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
buf generate --template proto/buf.gen.yaml --output "$tmp"

# Compare file by file so the report names files, not diff hunks.
stale=0
while IFS= read -r f; do
	if [[ ! -f "internal/gen/$f" ]]; then
		echo "  missing   internal/gen/$f" >>"$tmp/report"
	elif [[ ! -f "$tmp/internal/gen/$f" ]]; then
		echo "  extra     internal/gen/$f" >>"$tmp/report"
	elif ! cmp -s "internal/gen/$f" "$tmp/internal/gen/$f"; then
		echo "  changed   internal/gen/$f" >>"$tmp/report"
	else
		continue
	fi
	stale=1
done < <(
	{
		[[ ! -d internal/gen ]] || (cd internal/gen && find . -type f)
		(cd "$tmp/internal/gen" && find . -type f)
	} | sed 's|^\./||' | LC_ALL=C sort -u
)

if [[ $stale -ne 0 ]]; then
	echo "gen-proto: internal/gen does not match proto/; run scripts/gen-proto.sh and commit the result:" >&2
	cat "$tmp/report" >&2
	exit 1
fi
echo "gen-proto: internal/gen is up to date"
