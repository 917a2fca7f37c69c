#!/usr/bin/env bash
# envtest-assets.sh: make sure kube-apiserver, etcd and kubectl for envtest
# exist in setup-envtest's store, and print that directory on stdout.
#
#   hack/envtest-assets.sh <k8s-version e.g. 1.37.2> [setup-envtest binary]
#
# Order of preference:
#   1. binaries already in the store (~/.local/share/kubebuilder-envtest/k8s/<ver>-linux-amd64);
#   2. `setup-envtest use <ver>` (works where the internet is reachable);
#   3. build them from source through the Go module proxy and install them into
#      that same store, so `setup-envtest use --installed-only <ver>` finds them.
#      kube-apiserver and kubectl come from k8s.io/kubernetes@v<ver>, etcd from
#      go.etcd.io/etcd/server/v3 (ETCD_VERSION, default below).
# Progress goes to stderr; the only stdout line is the assets directory.
set -euo pipefail

K8S_VERSION="${1:?usage: envtest-assets.sh <k8s-version> [setup-envtest]}"
K8S_VERSION="${K8S_VERSION#v}"
SETUP_ENVTEST="${2:-}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"

STORE="${ENVTEST_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
DIR="$STORE/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"

log() { echo "envtest-assets: $*" >&2; }

have_all() {
	[ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ]
}

# 1. Already in the store.
if have_all "$DIR"; then
	log "using cached binaries in $DIR"
	echo "$DIR"
	exit 0
fi

# 2. setup-envtest download (needs the internet; fails fast here).
if [ -n "$SETUP_ENVTEST" ] && [ -x "$SETUP_ENVTEST" ] && [ -z "${ENVTEST_FROM_SOURCE:-}" ]; then
	log "trying: setup-envtest use $K8S_VERSION"
	if out="$(timeout 60 "$SETUP_ENVTEST" use "$K8S_VERSION" --bin-dir "$STORE" -p path 2>/dev/null)" && have_all "$out"; then
		log "downloaded by setup-envtest into $out"
		echo "$out"
		exit 0
	fi
	log "setup-envtest could not download $K8S_VERSION; building from source"
fi

# 3. Build from source through the Go module proxy.
WORK="${ENVTEST_BUILD_DIR:-$STORE/build}"
mkdir -p "$WORK" "$DIR"
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

build_kube() {
	local mod="$WORK/kubernetes-v$K8S_VERSION"
	mkdir -p "$mod"
	log "resolving k8s.io/kubernetes@v$K8S_VERSION (module proxy)"
	local gomod
	gomod="$(cd "$mod" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
	local staging_version="v0.${K8S_VERSION#1.}"
	{
		echo "module envtest-kube-build"
		echo
		echo "go $(sed -n 's/^go //p' "$gomod")"
		echo
		echo "require k8s.io/kubernetes v$K8S_VERSION"
		echo
		# every staging module k8s.io/kubernetes lists at v0.0.0 is published at v0.<minor>.<patch>
		sed -n 's/^[[:space:]]*\(k8s.io\/[a-z0-9-]*\) v0\.0\.0$/\1/p' "$gomod" | sort -u | while read -r m; do
			echo "replace $m => $m $staging_version"
		done
	} >"$mod/go.mod"
	cat >"$mod/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
	log "go mod tidy for the kube-apiserver build module"
	(cd "$mod" && go mod tidy >&2)
	local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
	log "building kube-apiserver v$K8S_VERSION (about 9 minutes cold on 2 cores)"
	(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$DIR/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
	mv "$DIR/kube-apiserver.tmp" "$DIR/kube-apiserver"
	log "building kubectl v$K8S_VERSION"
	(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$DIR/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >&2)
	mv "$DIR/kubectl.tmp" "$DIR/kubectl"
}

build_etcd() {
	local mod="$WORK/etcd-$ETCD_VERSION"
	mkdir -p "$mod"
	cat >"$mod/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
	cat >"$mod/go.mod" <<EOF
module envtest-etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
	log "go mod tidy for the etcd build module ($ETCD_VERSION)"
	(cd "$mod" && go mod tidy >&2)
	log "building etcd $ETCD_VERSION (about 1 minute cold)"
	(cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$DIR/etcd.tmp" . >&2)
	mv "$DIR/etcd.tmp" "$DIR/etcd"
}

[ -x "$DIR/etcd" ] || build_etcd
{ [ -x "$DIR/kube-apiserver" ] && [ -x "$DIR/kubectl" ]; } || build_kube

have_all "$DIR" || { log "build finished but binaries are missing in $DIR"; exit 1; }
log "installed kube-apiserver, etcd and kubectl into $DIR"
echo "$DIR"
