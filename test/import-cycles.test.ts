import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The lint step `node scripts/import-cycles.js` (Makefile `lint`) uses this function.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { findCycles } = require('../scripts/import-cycles.js') as { findCycles(dirs: string[], baseDir: string): Promise<string[][]> };

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-cycles-'));
  writeFileSync(join(dir, 'a.ts'), "import { b } from './b';\nexport const a = () => b;\n");
  writeFileSync(join(dir, 'b.ts'), "import { a } from './a';\nexport const b = () => a;\n");
  writeFileSync(join(dir, 'c.ts'), "import type { D } from './d';\nexport interface C { d?: D }\n");
  writeFileSync(join(dir, 'd.ts'), "import { C } from './c';\nexport interface D { c?: C }\nexport const d = 1;\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('an import cycle is found, and a cycle closed only by a type-only import is not', async () => {
  const cycles = await findCycles(['.'], dir);
  expect(cycles.map((cycle) => [...cycle].sort())).toEqual([['a.ts', 'b.ts']]);
}, 60_000);
