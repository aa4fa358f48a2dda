#!/usr/bin/env node
import { startDemoPortal } from './index';

/** `orderly-demo-portal [PORT]`: serve the demo portal on 127.0.0.1 until interrupted. */
const port = Number(process.argv[2] ?? 0);
startDemoPortal({ port }).then(
  (portal) => {
    process.stdout.write(`demo portal listening on ${portal.url}\n`);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void portal.close().then(() => process.exit(0)));
  },
  (err: Error) => {
    process.stderr.write(`demo portal failed to start: ${err.message}\n`);
    process.exit(1);
  },
);
