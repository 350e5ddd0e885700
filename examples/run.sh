#!/usr/bin/env bash
# examples/run.sh builds examples/hello with builder and runs the image.
#
# On a fresh Debian machine, as root:
#   1. installs what is missing (EXAMPLE_APT_PACKAGES in .ci/lib.sh:
#      docker-registry busybox-static skopeo umoci runc make) and stops,
#      saying how to install it, when Go is missing,
#   2. builds a static builder binary with make (into its scratch directory;
#      `make install` installs one for good),
#   3. starts docker-registry on 127.0.0.1:5000 unless something answers there
#      (stopped again on exit) and pushes a busybox base image to it,
#   4. builds examples/hello into an OCI tarball,
#   5. runs the image with `builder run`: it prints a greeting (and, as a
#      second check, unpacks it with umoci and runs it with runc).
#
# Everything it makes lives in one scratch directory (mktemp -d) removed on
# exit: the binary, the registry's storage, the builder's state and the
# image. To keep them, say where:
#   OUT=FILE            keep the image's OCI tarball at FILE
#   BUILDER_ROOT=DIR    keep the builder's state (cache, local images) in DIR:
#                       running it again then comes from the cache
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

REGISTRY=${REGISTRY:-127.0.0.1:5000}

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

OUT=${OUT:-$work/hello.tar}
export BUILDER_ROOT=${BUILDER_ROOT:-$work/root}

ensure_packages "${EXAMPLE_APT_PACKAGES[@]}"
ensure_go

log "building builder (make: a static binary)"
make -s BINDIR="$work/bin"
B=$work/bin/builder

start_registry "$REGISTRY" "$work/registry"
seed_busybox "$REGISTRY" "$REGISTRY/busybox:latest"

log "builder build examples/hello"
"$B" build -t hello:latest \
	--build-arg "BASE=$REGISTRY/busybox:latest" \
	--output "type=oci,dest=$OUT" --progress=plain examples/hello

log "builder run hello:latest"
"$B" run --rm hello:latest

# A second check with other tools, when they are there: unpack the image
# with umoci and run it with runc.
if command -v umoci >/dev/null && command -v runc >/dev/null; then
	log "umoci + runc check"
	run_oci_tar "$OUT" "$work" "$container"
fi

case $OUT in
"$work"/*) log "the image goes with the scratch directory (OUT=FILE keeps it)" ;;
*) log "kept the image: $OUT" ;;
esac
case $BUILDER_ROOT in
"$work"/*) log "the builder's state goes with the scratch directory (BUILDER_ROOT=DIR keeps it)" ;;
*) log "kept the builder's state (cache, hello:latest): $BUILDER_ROOT" ;;
esac
