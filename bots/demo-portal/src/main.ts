#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { startDemoPortal } from './index';

/**
 * `orderly-demo-portal [PORT] [CREDENTIALS_FILE]`: serve the demo portal on 127.0.0.1 until
 * interrupted. The optional file holds `{"username": …, "password": …}` (never an argument).
 */
const [portArg, credentialsFile] = process.argv.slice(2);
let credentials: { username: string; password: string } | undefined;
if (credentialsFile) credentials = JSON.parse(readFileSync(credentialsFile, 'utf8')) as { username: string; password: string };
startDemoPortal({ port: Number(portArg ?? 0), ...(credentials ? { credentials } : {}) }).then(
  (portal) => {
    process.stdout.write(`demo portal listening on ${portal.url}${credentials ? ' (sign-in required)' : ''}\n`);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void portal.close().then(() => process.exit(0)));
  },
  (err: Error) => {
    process.stderr.write(`demo portal failed to start: ${err.message}\n`);
    process.exit(1);
  },
);
