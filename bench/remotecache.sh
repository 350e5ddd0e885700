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
#   BUILDKIT=/path/to/bin sudo bench/remotecache.sh  # also BuildKit, alternating
#
# With BUILDKIT, buildkitd (OCI worker, runc, private state and socket in
# the temp dir) does the same: machine A exports its registry cache with
# mode=max, machine B is the same daemon after "buildctl prune --all",
# importing it.
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
bkpid=
cleanup() {
	if [[ -n $bkpid ]]; then
		kill "$bkpid" 2>/dev/null || true
		wait "$bkpid" 2>/dev/null || true
	fi
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

bksock="unix://$work/buildkitd.sock"
bkbuild() { # EXTRA-ARGS...
	"$BUILDKIT/buildctl" --addr "$bksock" build --progress=plain --frontend dockerfile.v0 \
		--local context="$work/ctx" --local dockerfile="$work/ctx" --opt build-arg:BASE="$BASE" "$@"
}
if [[ -n ${BUILDKIT:-} ]]; then
	[[ -x $BUILDKIT/buildkitd && -x $BUILDKIT/buildctl ]] || die "BUILDKIT=$BUILDKIT must hold buildkitd and buildctl"
	printf '[registry."%s"]\n  http = true\n  insecure = true\n' "$PROXY" >"$work/buildkitd.toml"
	"$BUILDKIT/buildkitd" --config "$work/buildkitd.toml" --root "$work/buildkit" --addr "$bksock" \
		--oci-worker=true --containerd-worker=false --oci-worker-binary=runc >"$work/buildkitd.log" 2>&1 &
	bkpid=$!
	for _ in $(seq 1 100); do
		"$BUILDKIT/buildctl" --addr "$bksock" debug workers >/dev/null 2>&1 && break
		sleep 0.1
	done
	log "BuildKit machine A: build and push its cache (mode=max)"
	bkbuild --export-cache "type=registry,ref=$PROXY/bench-bkcache:runs,mode=max" >"$work/bkA.log" 2>&1 || {
		tail -n 30 "$work/bkA.log" >&2
		die "BuildKit machine A failed"
	}
fi

median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }

results=()
# bench NAME CHANGE OUTPUT: N runs of machine B, each on an empty root.
bench() {
	local name=$1 change=$2 output=$3 i lines t dl blobs cached
	local times=() bytes=() nblobs=() bktimes=() bkbytes=() bkcached=-
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
		if [[ -n ${BUILDKIT:-} ]]; then
			"$BUILDKIT/buildctl" --addr "$bksock" prune --all >/dev/null
			case $output in
			oci) out=(--output "type=oci,dest=$work/out-bk.tar") ;;
			push) out=(--output "type=image,name=$PROXY/bench-bkapp-$RANDOM$i:latest,push=true") ;;
			esac
			lines=$(wc -l <"$work/requests.log")
			/usr/bin/time -f '%e' -o "$work/t" "$BUILDKIT/buildctl" --addr "$bksock" build --progress=plain --frontend dockerfile.v0 \
				--local context="$work/ctx" --local dockerfile="$work/ctx" --opt build-arg:BASE="$BASE" \
				--import-cache "type=registry,ref=$PROXY/bench-bkcache:runs" "${out[@]}" >"$work/bkB.log" 2>&1 || {
				tail -n 30 "$work/bkB.log" >&2
				die "$name: BuildKit machine B failed"
			}
			bktimes+=("$(tail -n 1 "$work/t")")
			bkbytes+=("$(tail -n +"$((lines + 1))" "$work/requests.log" | awk '$1 == "GET" && $2 ~ /\/blobs\/sha256:/ { s += $4 } END { print s + 0 }')")
			bkcached=$(grep -c ' CACHED$' "$work/bkB.log" || true)
		fi
	done
	local bk="-"
	if [[ -n ${BUILDKIT:-} ]]; then
		bk="$(printf '%s\n' "${bktimes[@]}" | median)s, $(printf '%s\n' "${bkbytes[@]}" | median | cut -d. -f1) B, $bkcached CACHED"
	fi
	results+=("$(printf '| %-40s | %6ss | %9s B | %5s | %6s | %-32s | %s |' "$name" "$(printf '%s\n' "${times[@]}" | median)" \
		"$(printf '%s\n' "${bytes[@]}" | median | cut -d. -f1)" "$(printf '%s\n' "${nblobs[@]}" | median | cut -d. -f1)" "$cached" "$bk" "${times[*]} / ${bktimes[*]:-}")")
}

bench "nothing changed, --output type=oci" 0 oci
bench "nothing changed, --push (same registry)" 0 push
bench "one file changed, --output type=oci" 1 oci
bench "one file changed, --push (same registry)" 1 push

printf '\nbuilder %s, machine B with an empty --root, %s runs each, %s, %s\n\n' \
	"$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$(nproc) cores" "$(date -u +%Y-%m-%d)"
printf '| %-40s | %7s | %11s | %5s | %6s | %-32s | %s |\n' "case (machine B)" "median" "downloaded" "blobs" "CACHED" "BuildKit (median, downloaded)" "runs (s, builder / BuildKit)"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "---------" "-------------" "-------" "--------" "$(printf -- '-%.0s' {1..34})" "------"
printf '%s\n' "${results[@]}"
