#!/usr/bin/env bash
# tests/acceptance.sh builds examples/hello with the builder binary, pushes
# it with credentials to an htpasswd-protected docker-registry it starts on
# a free loopback port, and checks the result with other tools:
#   - builder login / logout against that registry (DOCKER_CONFIG in a
#     temp dir),
#   - skopeo inspect and skopeo copy read the pushed image back (config
#     Cmd and User checked),
#   - umoci unpack of the type=oci output and runc run of the bundle print
#     the greeting the image's CMD prints,
#   - skopeo copy docker-archive: and podman load (when installed) read the
#     type=docker output.
# Every step checks its result, not only its exit status. Run as root; .ci/run
# runs it after go test.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../.ci/lib.sh
source .ci/lib.sh

require_root
ensure_go
work=$(mktemp -d /tmp/builder-acceptance.XXXXXX)
container="builder-acceptance-$$"
cleanup() {
	runc delete --force "$container" >/dev/null 2>&1 || true
	stop_registry
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { die "acceptance: $*"; }
# expect WHAT FILE PATTERN: FILE must match the extended regexp PATTERN.
expect() {
	grep -Eq -- "$3" "$2" || { cat "$2" >&2; fail "$1: no match for /$3/ in $2"; }
}
# expect_json WHAT FILE PATTERN: like expect, on FILE with all whitespace
# removed (pretty-printed JSON on one line).
expect_json() {
	tr -d ' \t\n' <"$2" >"$2.compact"
	expect "$1" "$2.compact" "$3"
}

BASE_REGISTRY=${BASE_REGISTRY:-127.0.0.1:5000}
GREETING="Hello, builder! (running as app in /app)"
USER_NAME=acceptance
PASSWORD="acc-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export DOCKER_CONFIG="$work/docker"
B="$work/bin/builder"

log "building builder"
go build -o "$B" ./cmd/builder

start_registry "$BASE_REGISTRY" "$work/base-registry"
seed_busybox "$BASE_REGISTRY" "$BASE_REGISTRY/busybox:latest"

# An htpasswd-protected registry on a free loopback port.
port=5100
while port_open "127.0.0.1:$port"; do port=$((port + 1)); done
AUTH=127.0.0.1:$port
mkdir -p "$work/auth-registry"
htpasswd -niBC 5 "$USER_NAME" <<<"$PASSWORD" >"$work/auth-registry/htpasswd"
expect "htpasswd bcrypt entry" "$work/auth-registry/htpasswd" "^$USER_NAME:\\\$2y\\\$"
start_registry "$AUTH" "$work/auth-registry" "auth:
  htpasswd:
    realm: acceptance
    path: $work/auth-registry/htpasswd"

log "builder login (wrong password, then right)"
if "$B" login -u "$USER_NAME" --password-stdin "$AUTH" <<<"wrong" >"$work/login-bad.out" 2>&1; then
	fail "login with a wrong password succeeded"
fi
expect "login error" "$work/login-bad.out" "unauthorized"
"$B" login -u "$USER_NAME" --password-stdin "$AUTH" <<<"$PASSWORD" >"$work/login.out" 2>&1 ||
	{ cat "$work/login.out" >&2; fail "login failed"; }
expect "login" "$work/login.out" "^Login Succeeded$"
expect "config.json auths" "$DOCKER_CONFIG/config.json" "\"$AUTH\""
[[ $(stat -c %a "$DOCKER_CONFIG/config.json") == 600 ]] || fail "config.json is not mode 600"

log "builder build --push (with oci and docker outputs)"
REF=$AUTH/acceptance/hello:1
"$B" build --root "$work/root" --progress=plain \
	--build-arg "BASE=$BASE_REGISTRY/busybox:latest" \
	-t "$REF" --push \
	--output "type=oci,dest=$work/hello-oci.tar" \
	--output "type=docker,dest=$work/hello-docker.tar" \
	examples/hello >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "build --push failed"; }
expect "push progress" "$work/build.log" "pushed $REF@sha256:[0-9a-f]{64}"
if grep -Fq -- "$PASSWORD" "$work/build.log"; then fail "the password appears in the build output"; fi
[[ -s $work/hello-oci.tar ]] || fail "no OCI output"
[[ -s $work/hello-docker.tar ]] || fail "no docker output"

log "anonymous access is refused; skopeo reads builder login's config.json"
if skopeo inspect --tls-verify=false --no-creds "docker://$REF" >/dev/null 2>&1; then
	fail "the registry serves $REF without credentials"
fi
skopeo inspect --tls-verify=false --authfile "$DOCKER_CONFIG/config.json" "docker://$REF" >/dev/null ||
	fail "skopeo could not use the credentials builder login stored"

log "skopeo inspect"
CREDS="$USER_NAME:$PASSWORD"
skopeo inspect --tls-verify=false --creds "$CREDS" --config "docker://$REF" >"$work/config.json"
expect_json "Cmd" "$work/config.json" '"Cmd":\["/app/hello"\]'
expect_json "User" "$work/config.json" '"User":"app"'
expect_json "Env" "$work/config.json" '"GREETING_NAME=builder"'
skopeo inspect --tls-verify=false --creds "$CREDS" "docker://$REF" >"$work/inspect.json"
expect_json "layers" "$work/inspect.json" '"Layers":\["sha256:[0-9a-f]{64}"'

log "skopeo copy from the registry"
skopeo copy -q --src-tls-verify=false --src-creds "$CREDS" "docker://$REF" "oci:$work/copy:hello"
expect "copied index" "$work/copy/index.json" '"org.opencontainers.image.ref.name":"hello"'

log "builder push from the local store to a second tag"
"$B" push --root "$work/root" --progress=plain "$REF" "$AUTH/acceptance/hello:2" >"$work/push.log" 2>&1 ||
	{ cat "$work/push.log" >&2; fail "builder push failed"; }
expect "builder push" "$work/push.log" "digest: sha256:[0-9a-f]{64}"
skopeo inspect --tls-verify=false --creds "$CREDS" --config "docker://$AUTH/acceptance/hello:2" >"$work/config2.json"
cmp -s "$work/config.json" "$work/config2.json" || fail "hello:2 has another config than hello:1"

log "umoci unpack + runc run of the OCI output"
out=$(run_oci_tar "$work/hello-oci.tar" "$work" "$container")
[[ $out == "$GREETING" ]] || fail "runc printed '$out', want '$GREETING'"

log "skopeo copy docker-archive: of the docker output"
skopeo copy -q "docker-archive:$work/hello-docker.tar" "oci:$work/fromdocker:hello"
skopeo inspect --config "oci:$work/fromdocker:hello" >"$work/docker-config.json"
expect_json "docker-archive Cmd" "$work/docker-config.json" '"Cmd":\["/app/hello"\]'
expect_json "docker-archive User" "$work/docker-config.json" '"User":"app"'

if command -v podman >/dev/null 2>&1; then
	log "podman load of the docker output"
	pstore="$work/podman"
	mkdir -p "$pstore"
	podman --root "$pstore/root" --runroot "$pstore/run" --storage-driver vfs \
		load -i "$work/hello-docker.tar" >"$work/podman.log" 2>&1 || { cat "$work/podman.log" >&2; fail "podman load failed"; }
	expect "podman load" "$work/podman.log" "Loaded image"
	podman --root "$pstore/root" --runroot "$pstore/run" --storage-driver vfs \
		image inspect --format '{{.Config.User}} {{json .Config.Cmd}}' "$REF" >"$work/podman-inspect.txt"
	expect "podman inspect" "$work/podman-inspect.txt" '^app \["/app/hello"\]$'
	podman --root "$pstore/root" --runroot "$pstore/run" --storage-driver vfs rmi -a -f >/dev/null 2>&1 || true
else
	log "podman not installed: skipping podman load"
fi

log "builder logout"
"$B" logout "$AUTH" >"$work/logout.out"
expect "logout" "$work/logout.out" "Removing login credentials for $AUTH"
if grep -Fq "\"$AUTH\"" "$DOCKER_CONFIG/config.json"; then fail "logout left the credentials"; fi

log "acceptance: all checks passed"
