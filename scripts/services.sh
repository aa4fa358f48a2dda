#!/usr/bin/env bash
# Starts the local services the tests use when they do not answer: Redis on 127.0.0.1:6379 and
# PostgreSQL on 127.0.0.1:5432 (trust auth for user postgres, as on the build machines).
set -euo pipefail
say() { printf 'orderly: %s\n' "$*" >&2; }

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting redis-server on 127.0.0.1:6379"
  mkdir -p /tmp/orderly-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir /tmp/orderly-redis --logfile /tmp/orderly-redis/redis.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then say "PostgreSQL is not running on 127.0.0.1:5432 and is not installed (apt-get install postgresql)"; exit 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 || { say "cannot connect to PostgreSQL as postgres on 127.0.0.1:5432 (tests need trust or ORDERLY_TEST_PG_URL)"; exit 1; }
