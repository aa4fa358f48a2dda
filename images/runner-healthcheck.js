// Container health check for the runner, which serves no port of its own: healthy when the runner
// process lives and the Redis and control room it is configured for accept a TCP connection.
'use strict';
const net = require('node:net');
const fs = require('node:fs');

const alive = fs.readdirSync('/proc').some((pid) => {
  if (!/^\d+$/.test(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('orderly-runner');
  } catch {
    return false;
  }
});
if (!alive) {
  process.stderr.write('healthcheck: no orderly-runner process\n');
  process.exit(1);
}

function endpoint(url, fallbackPort) {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || fallbackPort) };
}
const redis = endpoint(process.env.REDIS_URL || 'redis://127.0.0.1:6379', 6379);
const controlRoomUrl = process.env.ORDERLY_CONTROL_ROOM_URL || 'http://127.0.0.1:7300';
const controlRoom = endpoint(controlRoomUrl, controlRoomUrl.startsWith('https:') ? 443 : 80);

function reachable({ host, port }) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
  });
}
Promise.all([reachable(redis), reachable(controlRoom)]).then(([r, c]) => {
  if (!r) process.stderr.write(`healthcheck: Redis ${redis.host}:${redis.port} unreachable\n`);
  if (!c) process.stderr.write(`healthcheck: control room ${controlRoom.host}:${controlRoom.port} unreachable\n`);
  process.exit(r && c ? 0 : 1);
});
