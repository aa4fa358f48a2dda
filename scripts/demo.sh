#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults. Starts its own Redis with one ACL
# user per process (unless REDIS_URL is set; the machine's Redis is left alone), the dev Vault (unless VAULT_ADDR is set), the control room on embedded PGlite, a runner for
# segment `demo` and the demo portal (sign-in required); makes a publisher key, packs, signs and
# publishes the eligibility bot, stores the portal credentials in Vault, runs the bot; prints the
# run; stops what it started. Exits 0 only if the run succeeded. `make up` (KEEP=1) keeps it running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/node_modules/.bin:$PATH"
DATA=${ORDERLY_DEMO_DIR:-$ROOT/.orderly/demo}
export ORDERLY_DATA_DIR="$DATA/control-room"
export ORDERLY_PORT=${ORDERLY_PORT:-7300}
export ORDERLY_URL="http://127.0.0.1:$ORDERLY_PORT"
OWN_REDIS=0
[ -n "${REDIS_URL:-}" ] || OWN_REDIS=1
REDIS_PORT=${ORDERLY_DEMO_REDIS_PORT:-7302}
export ORDERLY_LOG_LEVEL=${ORDERLY_LOG_LEVEL:-info}
PORTAL_PORT=${ORDERLY_DEMO_PORTAL_PORT:-7301}
VAULT_PORT=${ORDERLY_DEMO_VAULT_PORT:-8200}
KEEP=${KEEP:-0}
# Everything the demo writes (logs, the dev Vault's root token in its log, token files, the input)
# is private to this user: a bot's sandbox runs as another uid and must not read any of it.
umask 077
mkdir -p "$DATA/logs" "$DATA/out"
chmod -R go-rwx "$DATA"
LOGS="$DATA/logs"

if [ -t 1 ]; then say() { printf '\033[1morderly demo:\033[0m %s\n' "$*"; }; else say() { printf 'orderly demo: %s\n' "$*"; }; fi
pids=()
cleanup() {
  local code=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ ${#pids[@]} -eq 0 ] || say "stopped what it started (logs in $LOGS)"
  exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # url what
  for _ in $(seq 150); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  say "$2 did not come up; see $LOGS"; exit 1
}

ports=("$ORDERLY_PORT" "$PORTAL_PORT")
[ -n "${VAULT_ADDR:-}" ] || ports+=("$VAULT_PORT")
[ "$OWN_REDIS" = 0 ] || ports+=("$REDIS_PORT")
for port in "${ports[@]}"; do
  if port_busy "$port"; then say "port $port is in use (another 'make up'?); stop it or set ORDERLY_PORT / ORDERLY_DEMO_PORTAL_PORT / ORDERLY_DEMO_VAULT_PORT / ORDERLY_DEMO_REDIS_PORT"; exit 1; fi
done

if [ "$OWN_REDIS" = 1 ]; then
  # The stack's own Redis, as production runs it: the default user off, one ACL user for the
  # control room and one for the demo segment's runner (scripts/redis-acl.js), passwords in files
  # private to this user. Redis keeps nothing on disk here.
  say "starting Redis on 127.0.0.1:$REDIS_PORT with one ACL user per process (default user off)"
  node scripts/redis-acl.js --segments demo --passwords "$DATA/redis" --out "$DATA/redis-users.acl"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$DATA" --logfile "$LOGS/redis.log" --aclfile "$DATA/redis-users.acl" &
  pids+=($!)
  for _ in $(seq 50); do port_busy "$REDIS_PORT" && break; sleep 0.1; done
  port_busy "$REDIS_PORT" || { say "Redis did not come up; see $LOGS/redis.log"; exit 1; }
  export REDIS_URL="redis://orderly-control-room:$(cat "$DATA/redis/control-room")@127.0.0.1:$REDIS_PORT"
  RUNNER_REDIS_URL="redis://orderly-runner-demo:$(cat "$DATA/redis/runner-demo")@127.0.0.1:$REDIS_PORT"
else
  say "using the Redis at REDIS_URL for the control room and the runner"
  RUNNER_REDIS_URL=$REDIS_URL
fi

if [ -z "${VAULT_ADDR:-}" ]; then
  say "starting the dev Vault on 127.0.0.1:$VAULT_PORT (in memory; not for production)"
  export VAULT_TOKEN_FILE="$DATA/vault.token"
  rm -f "$VAULT_TOKEN_FILE"
  orderly dev vault --port "$VAULT_PORT" --token-file "$VAULT_TOKEN_FILE" >"$LOGS/vault.log" 2>&1 &
  pids+=($!)
  export VAULT_ADDR="http://127.0.0.1:$VAULT_PORT"
  wait_for "$VAULT_ADDR/v1/sys/health" "the dev Vault"
elif [ -z "${VAULT_TOKEN_FILE:-}" ]; then
  say "VAULT_ADDR is set: set VAULT_TOKEN_FILE to a file holding the control room's Vault token"; exit 1
fi

# The portal's sign-in, made fresh for each demo: the bot gets it only through Vault.
PORTAL_CREDENTIALS="$DATA/portal-credentials.json"
(umask 077 && node -e 'const c=require("crypto");process.stdout.write(JSON.stringify({username:"demo-bot-"+c.randomBytes(3).toString("hex"),password:c.randomBytes(18).toString("base64url")}))' >"$PORTAL_CREDENTIALS")

say "starting the control room on $ORDERLY_URL (embedded PGlite in $ORDERLY_DATA_DIR)"
say "WARNING: plain HTTP on loopback, no TLS. Fine for this demo only; production needs ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE (ORDERLY_ENV=production refuses to start without them)."
orderly control-room serve >"$LOGS/control-room.log" 2>&1 &
pids+=($!)
orderly-demo-portal "$PORTAL_PORT" "$PORTAL_CREDENTIALS" >"$LOGS/portal.log" 2>&1 &
pids+=($!)
wait_for "$ORDERLY_URL/readyz" "the control room"
wait_for "http://127.0.0.1:$PORTAL_PORT/" "the demo portal"

say "starting a runner for segment demo"
SECRETS="$ORDERLY_DATA_DIR/secrets"
REDIS_URL="$RUNNER_REDIS_URL" ORDERLY_SEGMENT=demo ORDERLY_CONTROL_ROOM_URL="$ORDERLY_URL" ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE="$SECRETS/control-room.pub" \
  ORDERLY_RUNNER_TOKEN_FILE="$SECRETS/runner-demo.token" ORDERLY_CACHE_DIR="$DATA/runner-cache" \
  env -u VAULT_TOKEN_FILE orderly runner start --segment demo >"$LOGS/runner.log" 2>&1 &
pids+=($!)

KEY="$DATA/publisher.key"
if [ ! -f "$KEY" ]; then orderly keys generate --out "$KEY" >/dev/null; fi
# Every publisher key has a holder: a person, here in team demo, which the first publish of a bot
# name claims it for (a rerun on the same data directory finds them made already).
if ! orderly teams ls --json | grep -q '"name": "demo"'; then
  say "creating person demo-developer and team demo, which will own the bots the demo publishes"
  orderly users create demo-developer --role developer >/dev/null
  orderly teams create demo >/dev/null
  orderly teams add demo --user demo-developer >/dev/null
fi
orderly keys register --name demo-publisher --public-key "$KEY.pub" --owner-user demo-developer >/dev/null
say "packing, signing and publishing bots/eligibility-check"
orderly bot pack bots/eligibility-check --key "$KEY" --out "$DATA/out" | sed 's/^/  /'
orderly bot publish "$DATA/out/eligibility-check-1.0.0.tgz" | sed 's/^/  /'
say "storing the portal credentials in Vault (orderly creds set, value on stdin)"
node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).username)' "$PORTAL_CREDENTIALS" | orderly creds set eligibility-check portal_user >/dev/null
node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).password)' "$PORTAL_CREDENTIALS" | orderly creds set eligibility-check portal_password >/dev/null

cat >"$DATA/input.json" <<JSON
{ "portalUrl": "http://127.0.0.1:$PORTAL_PORT", "memberId": "ZZT100200301", "dateOfBirth": "1900-01-15" }
JSON
say "running eligibility-check for a synthetic member"
status=0
orderly run start eligibility-check --input "$DATA/input.json" --wait --timeout 120 --reason "make demo: show the synthetic result" | sed 's/^/  /' || status=$?
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
say "control room: $ORDERLY_URL   demo portal: http://127.0.0.1:$PORTAL_PORT"
if [ "$status" -ne 0 ]; then say "the run did not succeed; logs in $LOGS"; exit 1; fi
say "the run succeeded"

if [ "$KEEP" = 1 ]; then
  say "stack is up; ORDERLY_URL=$ORDERLY_URL ORDERLY_DATA_DIR=$ORDERLY_DATA_DIR orderly run start eligibility-check --input $DATA/input.json --wait"
  node control-room/dist/console/demo-users.js "$ORDERLY_URL" "$ORDERLY_DATA_DIR/secrets/admin.token" "$DATA/console-users.json" | sed 's/^/  /' || say "the console's demo users could not be created"
  say "press Ctrl-C to stop"
  wait
fi
