#!/usr/bin/env bash
# bench/run.sh times builder on six workloads and, when BuildKit's binaries
# are given, BuildKit on the same workloads, alternating the two run by run
# so both see the same machine load. It prints medians and ratios. See
# bench/README.md.
#
#   sudo bench/run.sh                          # N=5 runs per case, builder only
#   BUILDKIT=/path/to/bin sudo bench/run.sh    # also BuildKit (bin/buildkitd, bin/buildctl)
#   N=10 sudo bench/run.sh                     # more runs
#   KEEP=1 sudo bench/run.sh                   # keep the generated inputs and logs
#   BUILDER=/path/to/builder sudo bench/run.sh # time that binary, skip the build
#   REGISTRY=127.0.0.1:5114 sudo bench/run.sh  # the local registry to use
#   CASES='bigctx-cold bigctx-1' sudo bench/run.sh  # only these cases
#
# BuildKit is never built here: build it once (see bench/README.md) and
# point BUILDKIT at the directory holding buildkitd and buildctl. It runs
# with its OCI worker and runc, on a private socket and state dir in the
# temp dir. Inputs are generated in a temp dir and removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

N=${N:-5}
REGISTRY=${REGISTRY:-127.0.0.1:5000}
BASE="$REGISTRY/busybox:latest"
CASES=${CASES:-"concurrent runs-cold runs-cached bigctx-cold bigctx-cached bigctx-1 multi"}
# PLATFORMS, when set, is the --platform of the case being timed (multi).
PLATFORMS=

require_root
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, got $N"
work=$(mktemp -d /tmp/builder-bench.XXXXXX)
bkpid=
cleanup() {
	if [[ -n $bkpid ]]; then
		kill "$bkpid" 2>/dev/null || true
		wait "$bkpid" 2>/dev/null || true
	fi
	stop_registry
	if [[ -n ${KEEP:-} ]]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages docker-registry busybox-static runc pigz
# The two-platform case needs an arm64 busybox for its base image and QEMU
# through binfmt_misc for its arm64 RUN steps; it is skipped without them.
ensure_busybox_arm64
ensure_go
if [[ -z ${BUILDER:-} ]]; then
	log "building builder"
	go build -o "$work/bin/builder" ./cmd/builder
	BUILDER="$work/bin/builder"
fi
start_registry "$REGISTRY" "$work/registry"
seed_busybox "$REGISTRY" "$BASE"
MULTIBASE="$REGISTRY/busybox:multi"
multi=
if [[ -x $BUSYBOX_ARM64 ]] && grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 &&
	go run ./internal/registrytest/cmd/seed -registry "$REGISTRY" -ref "$MULTIBASE" -multiarch >/dev/null; then
	multi=1
fi

# ---- BuildKit --------------------------------------------------------------

bksock="unix://$work/buildkitd.sock"
if [[ -n ${BUILDKIT:-} ]]; then
	[[ -x $BUILDKIT/buildkitd && -x $BUILDKIT/buildctl ]] || die "BUILDKIT=$BUILDKIT must hold buildkitd and buildctl"
	cat >"$work/buildkitd.toml" <<-TOML
		[registry."$REGISTRY"]
		  http = true
		  insecure = true
	TOML
	log "starting buildkitd (log: $work/buildkitd.log)"
	"$BUILDKIT/buildkitd" --config "$work/buildkitd.toml" --root "$work/buildkit" --addr "$bksock" \
		--oci-worker=true --containerd-worker=false --oci-worker-binary=runc >"$work/buildkitd.log" 2>&1 &
	bkpid=$!
	for _ in $(seq 1 100); do
		"$BUILDKIT/buildctl" --addr "$bksock" debug workers >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$BUILDKIT/buildctl" --addr "$bksock" debug workers >/dev/null || die "buildkitd did not start: $(tail -n 20 "$work/buildkitd.log")"
fi

# ---- inputs ----------------------------------------------------------------

# concurrent: four independent stages that each sleep a second, and a final
# stage that copies from all of them. A concurrent solver needs ~1 s.
mkdir -p "$work/concurrent"
{
	echo "ARG BASE"
	for s in 1 2 3 4; do
		printf 'FROM ${BASE} AS s%d\nRUN sleep 1 && echo %d > /out%d\n\n' "$s" "$s" "$s"
	done
	echo 'FROM ${BASE}'
	for s in 1 2 3 4; do
		printf 'COPY --from=s%d /out%d /out%d\n' "$s" "$s" "$s"
	done
} >"$work/concurrent/Dockerfile"

# runs: thirty small RUN steps in one stage, each a layer.
mkdir -p "$work/runs"
{
	echo "ARG BASE"
	echo 'FROM ${BASE}'
	for i in $(seq 1 30); do
		printf 'RUN echo step %d > /step%d\n' "$i" "$i"
	done
} >"$work/runs/Dockerfile"

# bigctx: a 160 MB context of 10,000 files (100 dirs x 100 files x 16 KiB of
# random bytes) copied in one COPY.
log "generating the 160 MB context"
mkdir -p "$work/bigctx"
printf 'ARG BASE\nFROM ${BASE}\nCOPY . /ctx\n' >"$work/bigctx/Dockerfile"
for d in $(seq -w 0 99); do
	mkdir -p "$work/bigctx/d$d"
	head -c $((100 * 16384)) /dev/urandom | split -b 16384 -d -a 3 - "$work/bigctx/d$d/f"
done
changed="$work/bigctx/d00/f000"

# multi: linux/amd64 + linux/arm64 in one build: a $BUILDPLATFORM stage per
# target (native), then a COPY and three RUNs per platform (arm64's under
# QEMU).
mkdir -p "$work/multi"
cat >"$work/multi/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS build
ARG TARGETARCH
RUN echo "built for $TARGETARCH" > /out
FROM ${BASE}
COPY --from=build /out /out
RUN uname -m > /arch
RUN echo a > /a && ls /bin > /list
RUN sh -c 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo $i > /count'
DOCKERFILE

# ---- timing ----------------------------------------------------------------

# Old cold roots are moved aside and deleted at the end, not before the
# next run: deleting 10,000 files just before a build makes ext4 without a
# journal scan the recently freed inodes on every create (see README).
ncold=0
fresh_builder() {
	if [[ -d $work/root-cold ]]; then
		ncold=$((ncold + 1))
		mv "$work/root-cold" "$work/old-cold-$ncold"
	fi
}
fresh_buildkit() { "$BUILDKIT/buildctl" --addr "$bksock" prune --all >/dev/null; }
touch_changed() { date +%s%N >"$changed"; }

builder_cmd() { # CONTEXT ROOT
	if [[ -n $PLATFORMS ]]; then
		printf '%q build --progress=plain --root %q --platform %q --build-arg BASE=%q --output type=oci,dest=%q %q' \
			"$BUILDER" "$2" "$PLATFORMS" "$MULTIBASE" "$work/out.tar" "$1"
		return
	fi
	printf '%q build --progress=plain --root %q --build-arg BASE=%q --output type=oci,dest=%q %q' \
		"$BUILDER" "$2" "$BASE" "$work/out.tar" "$1"
}
buildkit_cmd() { # CONTEXT
	if [[ -n $PLATFORMS ]]; then
		printf '%q --addr %q build --progress=plain --frontend dockerfile.v0 --local context=%q --local dockerfile=%q --opt platform=%q --opt build-arg:BASE=%q --output type=oci,dest=%q' \
			"$BUILDKIT/buildctl" "$bksock" "$1" "$1" "$PLATFORMS" "$MULTIBASE" "$work/out-bk.tar"
		return
	fi
	printf '%q --addr %q build --progress=plain --frontend dockerfile.v0 --local context=%q --local dockerfile=%q --opt build-arg:BASE=%q --output type=oci,dest=%q' \
		"$BUILDKIT/buildctl" "$bksock" "$1" "$1" "$BASE" "$work/out-bk.tar"
}

# timed LOG CMD runs CMD once and appends "wall user sys maxrss_kb" of it
# to LOG.times; its output goes to LOG.
timed() {
	local logf=$1 cmd=$2
	/usr/bin/time -f '%e %U %S %M' -o "$logf.t" bash -c "$cmd" >>"$logf" 2>&1 || {
		tail -n 40 "$logf" >&2
		die "failed: $cmd"
	}
	tail -n 1 "$logf.t" >>"$logf.times"
}

median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }

results=()
# bench NAME CONTEXT PREPARE_BUILDER PREPARE_BUILDKIT WARMUP ROOT alternates
# N builder runs and N BuildKit runs, each after its PREPARE (a shell
# function name or :). With WARMUP=1 each tool builds once untimed first.
bench() {
	local name=$1 ctx=$2 prep_b=$3 prep_k=$4 warmup=$5 root=$6 i
	local lb="$work/${name//[^a-zA-Z0-9]/_}.builder" lk="$work/${name//[^a-zA-Z0-9]/_}.buildkit"
	: >"$lb.times"
	: >"$lk.times"
	log "$name: $N runs each"
	if [[ $warmup == 1 ]]; then
		bash -c "$(builder_cmd "$ctx" "$root")" >"$lb" 2>&1 || { tail -n 40 "$lb" >&2; die "$name: builder warm-up failed"; }
		if [[ -n ${BUILDKIT:-} ]]; then
			bash -c "$(buildkit_cmd "$ctx")" >"$lk" 2>&1 || { tail -n 40 "$lk" >&2; die "$name: BuildKit warm-up failed"; }
		fi
	fi
	for ((i = 0; i < N; i++)); do
		$prep_b
		timed "$lb" "$(builder_cmd "$ctx" "$root")"
		if [[ -n ${BUILDKIT:-} ]]; then
			$prep_k
			timed "$lk" "$(buildkit_cmd "$ctx")"
		fi
	done
	local mb mk="-" ratio="-" cpu mem runs
	mb=$(awk '{ print $1 }' "$lb.times" | median)
	cpu=$(awk '{ print $2 + $3 }' "$lb.times" | median)
	mem=$(awk '{ print $4 }' "$lb.times" | sort -n | tail -n 1)
	runs=$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }' "$lb.times")
	if [[ -n ${BUILDKIT:-} ]]; then
		mk=$(awk '{ print $1 }' "$lk.times" | median)
		ratio=$(awk -v a="$mb" -v b="$mk" 'BEGIN { printf "%.2f", a / b }')
		runs="$runs / $(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }' "$lk.times")"
		mk="${mk}s"
	fi
	results+=("$(printf '| %-32s | %7ss | %8s | %5s | %6ss | %5d MB | %s |' "$name" "$mb" "$mk" "$ratio" "$cpu" $((mem / 1024)) "$runs")")
}

cold="$work/root-cold"
warm="$work/root-warm"
for c in $CASES; do
	case $c in
	concurrent) bench "4-stage concurrent, cold" "$work/concurrent" fresh_builder fresh_buildkit 0 "$cold" ;;
	runs-cold) bench "30 RUNs, cold" "$work/runs" fresh_builder fresh_buildkit 0 "$cold" ;;
	runs-cached) bench "30 RUNs, cached" "$work/runs" : : 1 "$warm" ;;
	bigctx-cold) bench "160 MB context, cold" "$work/bigctx" fresh_builder fresh_buildkit 0 "$cold" ;;
	bigctx-cached) bench "160 MB context, cached" "$work/bigctx" : : 1 "$warm" ;;
	bigctx-1) bench "160 MB context, 1 file changed" "$work/bigctx" touch_changed touch_changed 1 "$warm" ;;
	multi)
		if [[ -z $multi ]]; then
			log "no arm64 busybox or qemu-aarch64 binfmt handler (.ci/lib.sh ensure_busybox_arm64, ensure_binfmt): skipping the two-platform case"
			continue
		fi
		PLATFORMS=linux/amd64,linux/arm64
		bench "2 platforms (amd64+arm64), cold" "$work/multi" fresh_builder fresh_buildkit 0 "$cold"
		PLATFORMS=
		;;
	*) die "unknown case $c" ;;
	esac
done

# The physical reference: the same context through tar and gzip -1 / pigz
# (level 6, as the layers), written to a file like the build's output.
phys() {
	local name=$1 cmd=$2 t=() i
	for ((i = 0; i < N; i++)); do
		/usr/bin/time -f '%e' -o "$work/phys.t" bash -c "$cmd" >/dev/null 2>&1
		t+=("$(tail -n 1 "$work/phys.t")")
	done
	printf '| %-32s | %7ss | %s |\n' "$name" "$(printf '%s\n' "${t[@]}" | median)" "${t[*]}"
}
physical=()
if [[ " $CASES " == *" bigctx-cold "* ]]; then
	physical+=("$(phys "tar \\| gzip -1" "tar -C $(printf %q "$work/bigctx") -cf - . | gzip -1 >$(printf %q "$work/phys.tgz")")")
	physical+=("$(phys "tar \\| pigz" "tar -C $(printf %q "$work/bigctx") -cf - . | pigz >$(printf %q "$work/phys.tgz")")")
fi

printf '\nbuilder %s, %s runs each (builder and BuildKit alternating), %s, %s\n\n' \
	"$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$(nproc) cores" "$(date -u +%Y-%m-%d)"
printf '| %-32s | %8s | %8s | %5s | %7s | %8s | %s |\n' "case" "builder" "BuildKit" "ratio" "b. CPU" "b. peak" "runs (s, builder / BuildKit)"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "----------" "----------" "-------" "---------" "----------" "------"
printf '%s\n' "${results[@]}"
if ((${#physical[@]} > 0)); then
	printf '\n| %-32s | %8s | %s |\n|%s|%s|%s|\n' "physical reference" "median" "runs (s)" "$(printf -- '-%.0s' {1..34})" "----------" "------"
	printf '%s\n' "${physical[@]}"
fi
