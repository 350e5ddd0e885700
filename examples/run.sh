#!/usr/bin/env bash
# examples/run.sh builds examples/hello with builder and runs the image.
#
# On a fresh Debian machine, as root:
#   1. installs what is missing (docker-registry busybox-static skopeo umoci runc),
#   2. builds ./cmd/builder,
#   3. starts docker-registry on 127.0.0.1:5000 unless something answers there
#      (stopped again on exit) and pushes a busybox base image to it,
#   4. builds examples/hello into an OCI tarball (OUT, default /tmp/hello.tar),
#   5. runs the image with `builder run`: it prints a greeting (and, as a
#      second check, unpacks it with umoci and runs it with runc).
#
# Running it again is fine: the second build comes from the cache.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

REGISTRY=${REGISTRY:-127.0.0.1:5000}
OUT=${OUT:-/tmp/hello.tar}

require_root
work=$(mktemp -d /tmp/builder-example.XXXXXX)
container="builder-hello-$$"
cleanup() {
	runc delete --force "$container" >/dev/null 2>&1 || true
	stop_registry
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages "${BUILDER_APT_PACKAGES[@]}"
ensure_go

log "building builder"
go build -o "$work/bin/builder" ./cmd/builder

start_registry "$REGISTRY" "$work/registry"
seed_busybox "$REGISTRY" "$REGISTRY/busybox:latest"

log "builder build examples/hello"
"$work/bin/builder" build -t hello:latest \
	--build-arg "BASE=$REGISTRY/busybox:latest" \
	--output "type=oci,dest=$OUT" --progress=plain examples/hello

log "builder run oci-archive:$OUT"
"$work/bin/builder" run --rm "oci-archive:$OUT"

# A second check with other tools, when they are there: unpack the image
# with umoci and run it with runc.
if command -v umoci >/dev/null && command -v runc >/dev/null; then
	log "umoci + runc check"
	run_oci_tar "$OUT" "$work" "$container"
fi
