# shellcheck shell=bash
# Helpers shared by .ci/run, tests/acceptance.sh, examples/run.sh and
# bench/run.sh. Source it from a script that runs with `set -euo pipefail`;
# it defines functions only.

# The packages examples/run.sh needs (the README lists them): a registry to
# pull base images from, the static busybox the base image is made of,
# tools to look at and run OCI images, and make for the static build.
EXAMPLE_APT_PACKAGES=(docker-registry busybox-static skopeo umoci runc make)
# The packages .ci/run needs besides: htpasswd (apache2-utils) for the
# registries with auth of the push tests, podman for the acceptance test's
# podman load, uidmap (newuidmap/newgidmap) for the rootless build test,
# chromium, the headless browser the build report's test renders in, and
# qemu-user-static and binfmt-support for the arm64 RUN steps of the
# multi-platform tests (binfmt_misc handlers with the F flag) and the seccomp
# test of a foreign-architecture program.
BUILDER_APT_PACKAGES=("${EXAMPLE_APT_PACKAGES[@]}" apache2-utils podman uidmap chromium qemu-user-static binfmt-support)

log() { printf '==> %s\n' "$*" >&2; }

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

require_root() {
	[[ $(id -u) -eq 0 ]] || die "$0 must run as root (it installs packages and runs containers)"
}

# ensure_packages installs those of the given Debian packages that are not
# installed yet; it does nothing (and needs no network) when all are.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			missing+=("$p")
		fi
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_wanted prints the Go version go.mod asks for (run from the repository).
go_wanted() {
	awk '$1 == "go" { print $2; exit }' go.mod
}

# ensure_go puts the Go toolchain on PATH (also from /usr/local/go, where
# the official tarball goes), or stops saying how to install the version
# go.mod asks for. A Go 1.21 or newer fetches that version by itself from
# the Go module proxy (GOTOOLCHAIN=auto).
ensure_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	command -v go >/dev/null 2>&1 && return 0
	local want arch
	want=$(go_wanted)
	arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
	die "Go is not installed: builder needs Go $want (go.mod). Install it with
  apt-get install -y curl ca-certificates && curl -fsSL https://go.dev/dl/go$want.linux-$arch.tar.gz | tar -C /usr/local -xz
and run $0 again (it looks in /usr/local/go/bin too)."
}

# port_open HOST:PORT reports whether something accepts TCP connections there.
port_open() {
	local host=${1%:*} port=${1##*:}
	(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# start_registry HOST:PORT DIR [EXTRA] starts docker-registry on HOST:PORT
# with its config, storage and log in DIR, unless something already answers
# there. EXTRA is more top-level YAML for the config (e.g. an auth: section).
# Every registry it starts is stopped by stop_registry.
REGISTRY_PIDS=()
start_registry() {
	local addr=$1 dir=$2 extra=${3:-} i pid
	if port_open "$addr"; then
		log "using the registry already answering on $addr"
		return 0
	fi
	mkdir -p "$dir/storage"
	cat >"$dir/config.yml" <<-YAML
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $dir/storage
		  delete:
		    enabled: true
		http:
		  addr: $addr
		$extra
	YAML
	log "starting docker-registry on $addr (log: $dir/registry.log)"
	docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	pid=$!
	REGISTRY_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		port_open "$addr" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/registry.log" >&2 || true
	die "docker-registry did not start on $addr"
}

# stop_registry stops the registries that start_registry started.
stop_registry() {
	local pid
	for pid in "${REGISTRY_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	REGISTRY_PIDS=()
}

# run_oci_tar TAR DIR NAME unpacks the first tagged image of the OCI layout
# tarball TAR under DIR with umoci and runs it with runc as container NAME,
# its output going to stdout (not a terminal). The caller removes the
# container on exit (runc delete --force NAME).
run_oci_tar() {
	local archive=$1 dir=$2 name=$3 tag
	mkdir -p "$dir/layout"
	tar -xf "$archive" -C "$dir/layout"
	tag=$(umoci ls --layout "$dir/layout" | head -n 1)
	[[ -n $tag ]] || die "$archive has no tagged image (index.json lacks org.opencontainers.image.ref.name)"
	umoci unpack --image "$dir/layout:$tag" "$dir/bundle" >/dev/null
	sed -i 's/"terminal":[[:space:]]*true/"terminal": false/' "$dir/bundle/config.json"
	runc run --bundle "$dir/bundle" "$name" </dev/null
}

# seed_busybox pushes the test busybox base image to REF on registry ADDR.
seed_busybox() {
	local addr=$1 ref=$2
	log "seeding $ref"
	go run ./internal/registrytest/cmd/seed -registry "$addr" -ref "$ref" >/dev/null
}

# BUSYBOX_ARM64 is where ensure_busybox_arm64 puts Debian's arm64 static
# busybox, for the two-platform test base image (registrytest.BusyboxIndex).
BUSYBOX_ARM64=/usr/local/lib/builder-test/arm64/bin/busybox

# ensure_busybox_arm64 extracts busybox-static:arm64 to $BUSYBOX_ARM64
# (adding the arm64 architecture to dpkg to download it). On a failure the
# multi-platform tests skip themselves, saying why.
ensure_busybox_arm64() {
	[[ -x $BUSYBOX_ARM64 ]] && return 0
	local tmp
	tmp=$(mktemp -d)
	log "downloading busybox-static:arm64"
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64
	fi
	if (cd "$tmp" && apt-get update -qq && apt-get download -qq busybox-static:arm64) >/dev/null 2>&1 &&
		dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/root"; then
		install -D -m 0755 "$tmp/root/bin/busybox" "$BUSYBOX_ARM64"
	else
		log "busybox-static:arm64 unavailable: the multi-platform tests will skip"
	fi
	rm -rf "$tmp"
}

# ensure_binfmt mounts binfmt_misc when it is not, and enables QEMU's
# aarch64 handler (Debian's qemu-user-static registers it with the F flag,
# so the emulator works inside build sandboxes). On a kernel or container
# that refuses, the tests that need emulation skip themselves, saying why.
ensure_binfmt() {
	local dir=/proc/sys/fs/binfmt_misc
	if [[ ! -e $dir/status ]]; then
		mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || log "cannot mount binfmt_misc: emulated RUN tests will skip"
	fi
	if [[ -e $dir/status && ! -e $dir/qemu-aarch64 ]]; then
		update-binfmts --enable qemu-aarch64 2>/dev/null || log "cannot enable qemu-aarch64: emulated RUN tests will skip"
	fi
}
