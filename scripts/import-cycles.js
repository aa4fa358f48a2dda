#!/usr/bin/env node
// Import cycles between our modules fail lint (issue 13): a cycle makes load order decide what a
// module sees, and it is how layers drift into each other. madge, as BullMQ runs it. Type-only
// imports are skipped: they vanish at compile time and cannot change load order.
'use strict';
const path = require('node:path');
const madge = require('madge');

const ROOT = path.join(__dirname, '..');
const SOURCES = ['shared/src', 'control-room/src', 'runner/src', 'bots'];

/** The import cycles among the TypeScript files under `dirs` (paths relative to `baseDir`). */
async function findCycles(dirs, baseDir = ROOT) {
  const result = await madge(dirs.map((dir) => path.join(baseDir, dir)), {
    baseDir,
    fileExtensions: ['ts'],
    excludeRegExp: [/\.d\.ts$/, /\/dist\//, /\/node_modules\//],
    tsConfig: path.join(ROOT, 'tsconfig.base.json'),
    detectiveOptions: { ts: { skipTypeImports: true }, tsx: { skipTypeImports: true } },
  });
  return result.circular();
}

module.exports = { findCycles };

if (require.main === module) {
  findCycles(SOURCES).then(
    (cycles) => {
      if (cycles.length === 0) return;
      console.error(`${cycles.length} import cycle(s); break each by moving what both sides need into a module of its own:`);
      for (const cycle of cycles) console.error(`  ${[...cycle, cycle[0]].join(' → ')}`);
      process.exitCode = 1;
    },
    (error) => {
      console.error(error);
      process.exitCode = 2;
    },
  );
}
