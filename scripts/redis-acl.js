#!/usr/bin/env node
// Writes a Redis ACL file (aclfile) for Orderly: one user per process kind, the default user off.
//   scripts/redis-acl.js --segments dev,prod --passwords DIR [--prefix orderly] [--out users.acl]
// DIR holds one password file per user (control-room, runner-<segment>), each made if missing
// (0600, 32 random bytes, base64url). The ACL file stores only SHA-256 hashes of them (#<hex>).
//
// What each user may do (Redis 7 ACL):
// - orderly-runner-<segment>: the keys of its own run queue (<prefix>:orderly.run.<segment>:*) and
//   of its own reports queue (<prefix>:orderly.reports.<segment>:*, where it pushes sealed, signed
//   reports), subscribe to its own cancel channel (<prefix>:orderly.cancel.<segment>); never
//   PUBLISH, never another segment's keys or channels, nor the shared <prefix>:orderly.reports of
//   earlier releases (only the control room drains it), nor any DLQ (<prefix>:orderly.dlq.<segment>
//   is the control room's, for its consumers), no admin or dangerous command except INFO (BullMQ
//   reads the server version with it).
// - orderly-control-room: every key and channel under <prefix>: (it feeds all queues, reads all
//   reports, publishes cancellations), no admin or dangerous command except INFO.
// - default: off (no process may connect without a user name).
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const NAME = /^[A-Za-z0-9_-]+$/;

/** The ACL file's lines for these segments and password hashes (pure: the unit under test). */
function aclLines({ prefix, segments, hashes }) {
  for (const name of [prefix, ...segments]) {
    if (!NAME.test(name)) throw new Error(`ORDERLY_E_CONFIG_INVALID: "${name}" may hold only letters, digits, _ and -`);
  }
  const commands = '-@all +@read +@write +@keyspace +@list +@hash +@set +@sortedset +@stream +@string +@scripting +@connection +@transaction +@pubsub +@fast +@slow -@dangerous -@admin +info';
  const lines = ['user default off resetkeys resetchannels -@all'];
  lines.push(`user orderly-control-room on #${hashes['control-room']} resetkeys ~${prefix}:* resetchannels &${prefix}:* ${commands}`);
  for (const segment of segments) {
    lines.push(
      `user orderly-runner-${segment} on #${hashes[`runner-${segment}`]} resetkeys ~${prefix}:orderly.run.${segment}:* ~${prefix}:orderly.reports.${segment}:* ` +
        `resetchannels &${prefix}:orderly.cancel.${segment} ${commands} -publish -spublish`,
    );
  }
  return lines;
}

function readOrMakePassword(file) {
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, crypto.randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  }
  const password = fs.readFileSync(file, 'utf8').trim();
  if (password.length < 16) throw new Error(`ORDERLY_E_CONFIG_INVALID: ${file} holds a password shorter than 16 characters`);
  return password;
}

function main(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`ORDERLY_E_CONFIG_INVALID: usage: redis-acl.js --segments a,b --passwords DIR [--prefix P] [--out FILE]`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  if (!args.segments || !args.passwords) throw new Error('ORDERLY_E_CONFIG_INVALID: --segments and --passwords are required');
  const segments = args.segments.split(',').map((s) => s.trim()).filter(Boolean);
  const prefix = args.prefix ?? 'orderly';
  fs.mkdirSync(args.passwords, { recursive: true, mode: 0o700 });
  const hashes = {};
  for (const user of ['control-room', ...segments.map((s) => `runner-${s}`)]) {
    hashes[user] = crypto.createHash('sha256').update(readOrMakePassword(path.join(args.passwords, user))).digest('hex');
  }
  const text = `${aclLines({ prefix, segments, hashes }).join('\n')}\n`;
  if (args.out) fs.writeFileSync(args.out, text, { mode: 0o640 });
  else process.stdout.write(text);
}

module.exports = { aclLines };
if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`redis-acl: ${err.message}\n`);
    process.exit(1);
  }
}
