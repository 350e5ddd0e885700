#!/usr/bin/env bash
# bench/run.sh times builder on three workloads and prints the medians next
# to BuildKit's numbers on the same machine class. See bench/README.md.
#
#   sudo bench/run.sh            # N=5 runs per case
#   N=10 sudo bench/run.sh       # more runs
#   KEEP=1 sudo bench/run.sh     # keep the generated inputs and logs
#   BUILDER=/path/to/builder sudo bench/run.sh   # time that binary, skip the build
#
# It uses hyperfine when it is installed and a bash loop otherwise. Inputs
# are generated in a temp dir and removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

N=${N:-5}
REGISTRY=${REGISTRY:-127.0.0.1:5000}
BASE="$REGISTRY/busybox:latest"

require_root
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, got $N"
work=$(mktemp -d /tmp/builder-bench.XXXXXX)
cleanup() {
	stop_registry
	if [[ -n ${KEEP:-} ]]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages docker-registry busybox-static
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
	go run ./registry/registrytest/cmd/seed -registry "$REGISTRY" -ref "$MULTIBASE" -multiarch >/dev/null; then
	multi=1
else
	log "no arm64 busybox or qemu-aarch64 binfmt handler (.ci/lib.sh ensure_busybox_arm64, ensure_binfmt): skipping the two-platform case"
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
# target (native), then three RUNs per platform (arm64's under QEMU).
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

# build CONTEXT ROOT runs one build, its progress going to the case's log.
build_cmd() {
	printf '%q build --progress=plain --root %q --build-arg BASE=%q --output type=oci,dest=%q %q' \
		"$BUILDER" "$2" "$BASE" "$work/out.tar" "$1"
}

have_hyperfine=
timer="bash loop"
if command -v hyperfine >/dev/null 2>&1; then
	have_hyperfine=1
	timer=hyperfine
fi
results=()

# bench NAME BUILDKIT_SECONDS WARMUP PREPARE CMD times CMD N times, running
# PREPARE (a shell command, may be :) before each run and, when WARMUP is 1,
# running CMD once untimed first. It records the median.
bench() {
	local name=$1 ref=$2 warmup=$3 prepare=$4 cmd=$5 median
	local logf="$work/${name//[^a-zA-Z0-9]/_}.log"
	log "$name: $N runs"
	if [[ $warmup == 1 ]]; then
		bash -c "$prepare; $cmd" >"$logf" 2>&1 || { cat "$logf" >&2; die "$name: warm-up build failed"; }
	fi
	if [[ -n $have_hyperfine ]]; then
		hyperfine --runs "$N" --prepare "$prepare" --export-json "$logf.json" \
			--command-name "$name" "$cmd >>$logf 2>&1" >&2 || { tail -n 50 "$logf" >&2; die "$name failed"; }
		median=$(grep -o '"median": *[0-9.e+-]*' "$logf.json" | head -n 1 | sed 's/.*: *//')
		median=$(awk -v m="$median" 'BEGIN { printf "%.2f", m }')
	else
		local times=() i t0 t1
		for ((i = 0; i < N; i++)); do
			bash -c "$prepare" >>"$logf" 2>&1
			t0=$(date +%s%N)
			bash -c "$cmd" >>"$logf" 2>&1 || { tail -n 50 "$logf" >&2; die "$name failed"; }
			t1=$(date +%s%N)
			times+=("$(((t1 - t0) / 1000000))")
		done
		median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END {
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.2f", m / 1000 }')
		log "$name: runs (ms) ${times[*]}; median ${median}s"
	fi
	results+=("$(printf '| %-32s | %8ss | %8s |' "$name" "$median" "$ref")")
}

cold="$work/root-cold"
warm="$work/root-warm"
fresh="rm -rf $(printf %q "$cold")"

bench "4-stage concurrent, cold" "1.8s" 0 "$fresh" "$(build_cmd "$work/concurrent" "$cold")"
bench "30 RUNs, cold" "2.8s" 0 "$fresh" "$(build_cmd "$work/runs" "$cold")"
bench "30 RUNs, cached" "0.14s" 1 ":" "$(build_cmd "$work/runs" "$warm")"
bench "160 MB context, cold" "9.3s" 0 "$fresh" "$(build_cmd "$work/bigctx" "$cold")"
bench "160 MB context, cached" "1.35s" 1 ":" "$(build_cmd "$work/bigctx" "$warm")"
bench "160 MB context, 1 file changed" "-" 1 "date +%s%N >$(printf %q "$changed")" \
	"$(build_cmd "$work/bigctx" "$warm")"

if [[ -n $multi ]]; then
	bench "2 platforms (amd64+arm64), cold" "3.1s" 0 "$fresh" \
		"$(printf '%q build --progress=plain --root %q --platform linux/amd64,linux/arm64 --build-arg BASE=%q --output type=oci,dest=%q %q' \
			"$BUILDER" "$cold" "$MULTIBASE" "$work/out.tar" "$work/multi")"
fi

printf '\nbuilder %s, %s runs each, %s\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$timer"
printf '| %-32s | %9s | %8s |\n' "case" "median" "BuildKit"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..10})"
printf '%s\n' "${results[@]}"
