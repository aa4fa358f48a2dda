#!/usr/bin/env bash
# `make images-test`: runs localhost/orderly-runner:latest (from `make images`) the way
# images/compose.yaml does (its non-root uid 10001, read-only root, tmpfs /tmp, cap-drop ALL,
# no-new-privileges, memory and pids limits) with podman + runc, and checks inside it:
#  1. it runs as uid 10001 and cannot write its root filesystem or its own code;
#  2. the runner CLI starts (orderly-runner --help) and its sandbox tools are there;
#  3. a bubblewrap sandbox starts as that user with what compose grants (user namespaces, fresh
#     /proc) and sees only its own loopback;
#  4. Debian's Chromium, headless, renders the demo portal's sign-in page (the portal runs on the
#     host; the container shares the host's network for this check only).
#  5. a whole job: `make up`'s stack (control room, dev Vault, demo portal, on free ports and a
#     directory of its own) with its host runner stopped, and the runner image (same settings,
#     host network, the token and control-room.pub mounted read-only) runs the demo bot in its
#     bubblewrap sandbox to success. IMAGES_TEST_RUN=0 skips this part.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/orderly-runner:latest}
. images/store.sh
conf=$(mktemp /tmp/orderly-containers.XXXXXX.conf)
portal_pid= demo_pid= work=$(mktemp -d /tmp/orderly-images-test.XXXXXX) ctr=orderly-images-test-$$
cleanup() {
  pod stop -t 5 "$ctr" >/dev/null 2>&1 || true
  [ -z "$portal_pid" ] || kill "$portal_pid" 2>/dev/null || true
  [ -z "$demo_pid" ] || { kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; }
  rm -rf "$conf" "$work"
}
trap cleanup EXIT
# crun fails on this kernel's hybrid cgroups; root here cannot raise hard rlimits (see
# /work/shared/notes/containers-here.md): runc, and limits no higher than ours.
nofile=$(ulimit -Hn) nproc=$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 ))
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' "$nofile" "$nofile" "$nproc" "$nproc" >"$conf"
export CONTAINERS_CONF=$conf
pod image exists "$IMAGE" || { echo "images-test: $IMAGE is missing: run make images" >&2; exit 1; }

# The compose file's runner settings, as podman needs them: its default seccomp profile already
# allows user namespaces (docker's does not: compose says seccomp=unconfined), this machine has no
# AppArmor, and unmask=ALL is podman's systempaths=unconfined (without it bwrap fails with
# "Can't mount proc on /newroot/proc: Operation not permitted", checked).
run() {
  pod run --rm --read-only --cap-drop ALL \
    --security-opt no-new-privileges --security-opt unmask=ALL --tmpfs /tmp:rw,mode=1777 --memory 2g --pids-limit 1024 "$@"
}

ok() { printf 'images-test: ok   %s\n' "$*"; }

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
creds=$(mktemp /tmp/orderly-portal.XXXXXX.json)
printf '{"username":"synthetic-user","password":"synthetic-password-not-real"}' >"$creds"
node bots/demo-portal/bin/orderly-demo-portal.js "$port" "$creds" >/dev/null 2>&1 &
portal_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.2; done

# One container for every check: with vfs storage each container start copies the whole image.
# The host's network is shared for the portal check only; the sandbox check makes its own.
start=$SECONDS
run --network host -e PORTAL="http://127.0.0.1:$port/" "$IMAGE" sh -ec '
  ok() { echo "images-test: ok   $*"; }
  [ "$(id -u)" = 10001 ] || { echo "images-test: runs as uid $(id -u), not 10001" >&2; exit 1; }
  ok "runs as uid 10001 ($(id -un))"
  if touch /srv/orderly/runner/x 2>/dev/null || touch /usr/x 2>/dev/null || touch /x 2>/dev/null; then echo "images-test: root or code writable" >&2; exit 1; fi
  touch /tmp/x
  ok "read-only root and code, writable tmpfs /tmp"
  orderly-runner --help >/dev/null
  command -v bwrap prlimit tini chromium >/dev/null
  python3 -c "import seccomp"
  ok "orderly-runner starts; bwrap, prlimit, tini, chromium and python3-seccomp are there"
  bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --unshare-all --die-with-parent --new-session \
    -- sh -c "test \"\$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \")\" = lo; test \$(ls /proc | grep -c \"^[0-9]\") -le 6"
  ok "a bubblewrap sandbox starts as uid 10001: own user, pid and network namespaces (loopback only), fresh /proc"
  dom=$(HOME=/tmp chromium --headless --no-sandbox --disable-gpu --dump-dom "$PORTAL" 2>/dev/null)
  echo "$dom" | grep -qi "<form" || { echo "images-test: Chromium did not render the demo portal" >&2; exit 1; }
  ok "Debian Chromium in the image renders the demo portal sign-in form ($(echo "$dom" | wc -c) bytes of DOM)"
'
rm -f "$creds"
kill "$portal_pid"; portal_pid=

if [ "${IMAGES_TEST_RUN:-1}" = 1 ]; then
  free() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
  cr_port=$(free) portal_port=$(free) vault_port=$(free)
  demo=$work/demo
  ORDERLY_PORT=$cr_port ORDERLY_DEMO_PORTAL_PORT=$portal_port ORDERLY_DEMO_VAULT_PORT=$vault_port ORDERLY_DEMO_DIR=$demo KEEP=1 \
    scripts/demo.sh >"$work/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 300); do grep -q 'stack is up' "$work/demo.log" && break; kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
  grep -q 'stack is up' "$work/demo.log" || { tail -20 "$work/demo.log" >&2; echo "images-test: the demo stack did not come up" >&2; exit 1; }
  # Stop the demo's own (host) runner, the one whose cache is in this test's directory.
  for pid in $(pgrep -f 'runner start --segment demo' || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "ORDERLY_CACHE_DIR=$demo/runner-cache"; then kill "$pid"; fi
  done
  mkdir -m 0700 "$work/keys" "$work/data"
  # The token and, beside it, the bootstrap runner's report-signing key (0600), as the runner looks for it.
  cp "$demo/control-room/secrets/control-room.pub" "$demo/control-room/secrets/runner-demo.token" "$demo/control-room/secrets/runner-demo.key" "$work/keys/"
  chmod 0600 "$work/keys/runner-demo.key"
  chown -R 10001:10001 "$work/keys" "$work/data"
  run -d --name "$ctr" --network host -v "$work/keys:/run/orderly:ro" -v "$work/data:/var/lib/orderly" \
    -e ORDERLY_SEGMENT=demo -e ORDERLY_CONTROL_ROOM_URL="http://127.0.0.1:$cr_port" -e ORDERLY_RUNNER_ID=images-test \
    -e ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE=/run/orderly/control-room.pub -e ORDERLY_RUNNER_TOKEN_FILE=/run/orderly/runner-demo.token \
    -e REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" -e VAULT_ADDR="http://127.0.0.1:$vault_port" "$IMAGE" >/dev/null
  # Read the logs while they last: the container is --rm, so one that exits takes its logs along.
  for _ in $(seq 120); do
    pod logs "$ctr" >"$work/runner.log" 2>&1 || true
    grep -q '"runner started"' "$work/runner.log" && break
    pod container exists "$ctr" || break
    sleep 1
  done
  grep -q '"runner started"' "$work/runner.log" || { cat "$work/runner.log" >&2; echo "images-test: the runner container did not start (or exited at once)" >&2; exit 1; }
  ok "the runner image starts as uid 10001 against the demo's control room"
  out=$(ORDERLY_URL="http://127.0.0.1:$cr_port" ORDERLY_DATA_DIR="$demo/control-room" node_modules/.bin/orderly run start eligibility-check \
    --input "$demo/input.json" --wait --timeout 150 2>&1) || true
  pod logs "$ctr" 2>&1 | grep -q '"runner":"images-test".*"run succeeded"' && grep -q 'status *succeeded' <<<"$out" \
    || { echo "$out" >&2; pod logs "$ctr" 2>&1 | tail -20 >&2; echo "images-test: the containerised runner did not run the bot to success" >&2; exit 1; }
  ok "the runner image ran the demo bot in its sandbox against the demo portal: $(grep -o '"coverage":"[^"]*"' <<<"$out")"
fi
echo "images-test: passed in $((SECONDS - start)) s"
