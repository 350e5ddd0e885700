#!/usr/bin/env bash
# bench/remotecache.sh measures the registry cache between two machines:
# machine A (its own --root) builds and pushes its cache (mode=max);
# machine B (an empty --root every run) builds the same Dockerfile with
# --cache-from, with nothing changed and with one source file changed,
# writing an OCI tarball or pushing to the same registry. It prints the
# median wall time and the bytes B downloaded from the registry (counted by
# a proxy in front of it). See bench/README.md.
#
#   sudo bench/remotecache.sh                 # N=5 runs per case
#   N=10 sudo bench/remotecache.sh
#   REGISTRY=127.0.0.1:5114 sudo bench/remotecache.sh
#   BUILDER=/path/to/builder sudo bench/remotecache.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

N=${N:-5}
REGISTRY=${REGISTRY:-127.0.0.1:5000}

require_root
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, got $N"
work=$(mktemp -d /tmp/builder-bench-rc.XXXXXX)
proxypid=
cleanup() {
	if [[ -n $proxypid ]]; then
		kill "$proxypid" 2>/dev/null || true
		wait "$proxypid" 2>/dev/null || true
	fi
	stop_registry
	if [[ -n ${KEEP:-} ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages docker-registry busybox-static runc
ensure_go
if [[ -z ${BUILDER:-} ]]; then
	log "building builder"
	go build -o "$work/bin/builder" ./cmd/builder
	BUILDER="$work/bin/builder"
fi
go build -o "$work/bin/countproxy" ./bench/countproxy
start_registry "$REGISTRY" "$work/registry"

# Everything goes through the counting proxy (the base image's name is part
# of the cache keys, so machine A uses it too).
"$work/bin/countproxy" -target "$REGISTRY" -log "$work/requests.log" >"$work/proxy.addr" &
proxypid=$!
for _ in $(seq 1 50); do [[ -s $work/proxy.addr ]] && break; sleep 0.1; done
PROXY=$(cat "$work/proxy.addr")
[[ -n $PROXY ]] || die "countproxy did not start"
BASE="$PROXY/busybox:latest"
seed_busybox "$PROXY" "$BASE"
CACHE="$PROXY/bench-cache:runs"

# The 30-RUN case of bench/run.sh, with a source file copied before the
# last RUN: changing it re-runs the COPY and that RUN on top of 29 cached
# layers.
mkdir -p "$work/ctx"
{
	echo "ARG BASE"
	echo 'FROM ${BASE}'
	for i in $(seq 1 29); do
		printf 'RUN echo step %d > /step%d\n' "$i" "$i"
	done
	echo 'COPY app.txt /app.txt'
	echo 'RUN wc -c /app.txt > /size'
} >"$work/ctx/Dockerfile"
echo "version 1" >"$work/ctx/app.txt"

build() { # ROOT EXTRA-ARGS...
	local root=$1
	shift
	"$BUILDER" build --progress=plain --root "$root" --build-arg BASE="$BASE" "$@" "$work/ctx"
}

log "machine A: build and push the cache (mode=max)"
build "$work/rootA" --cache-to "type=registry,ref=$CACHE,mode=max" >"$work/A.log" 2>&1 || {
	tail -n 30 "$work/A.log" >&2
	die "machine A failed"
}

median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }

results=()
# bench NAME CHANGE OUTPUT: N runs of machine B, each on an empty root.
bench() {
	local name=$1 change=$2 output=$3 i lines t dl blobs cached
	local times=() bytes=() nblobs=()
	log "$name: $N runs"
	for ((i = 0; i < N; i++)); do
		if [[ $change == 1 ]]; then echo "version 2 run $i $(date +%s%N)" >"$work/ctx/app.txt"; else echo "version 1" >"$work/ctx/app.txt"; fi
		local root="$work/rootB-$RANDOM$i" out
		case $output in
		oci) out=(--output "type=oci,dest=$work/out.tar") ;;
		push) out=(--push -t "$PROXY/bench-app-$RANDOM$i:latest") ;;
		esac
		lines=$(wc -l <"$work/requests.log")
		/usr/bin/time -f '%e' -o "$work/t" "$BUILDER" build --progress=plain --root "$root" --build-arg BASE="$BASE" \
			--cache-from "type=registry,ref=$CACHE" "${out[@]}" "$work/ctx" >"$work/B.log" 2>&1 || {
			tail -n 30 "$work/B.log" >&2
			die "$name: machine B failed"
		}
		t=$(tail -n 1 "$work/t")
		# Bytes of blob downloads (GET .../blobs/sha256:...) during the run.
		dl=$(tail -n +"$((lines + 1))" "$work/requests.log" | awk '$1 == "GET" && $2 ~ /\/blobs\/sha256:/ { s += $4 } END { print s + 0 }')
		blobs=$(tail -n +"$((lines + 1))" "$work/requests.log" | awk '$1 == "GET" && $2 ~ /\/blobs\/sha256:/ { n++ } END { print n + 0 }')
		cached=$(grep -c ' CACHED$' "$work/B.log" || true)
		times+=("$t")
		bytes+=("$dl")
		nblobs+=("$blobs")
		rm -rf "$root"
	done
	results+=("$(printf '| %-40s | %6ss | %9s B | %5s | %6s | %s |' "$name" "$(printf '%s\n' "${times[@]}" | median)" \
		"$(printf '%s\n' "${bytes[@]}" | median)" "$(printf '%s\n' "${nblobs[@]}" | median)" "$cached" "${times[*]}")")
}

bench "nothing changed, --output type=oci" 0 oci
bench "nothing changed, --push (same registry)" 0 push
bench "one file changed, --output type=oci" 1 oci
bench "one file changed, --push (same registry)" 1 push

printf '\nbuilder %s, machine B with an empty --root, %s runs each, %s, %s\n\n' \
	"$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$(nproc) cores" "$(date -u +%Y-%m-%d)"
printf '| %-40s | %7s | %11s | %5s | %6s | %s |\n' "case (machine B)" "median" "downloaded" "blobs" "CACHED" "runs (s)"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "---------" "-------------" "-------" "--------" "------"
printf '%s\n' "${results[@]}"
