import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// The CLI is a client of the HTTP API: starting it must not load the server's engines (the web
// framework, queues, databases, Vault clients, the browser). Only `control-room serve`, `dev vault`
// and `backup` load theirs, inside their actions. Every `orderly` call pays for what main loads.
const SERVER_ENGINES = ['fastify', 'bullmq', 'ioredis', 'pg', '@electric-sql/pglite', 'node-vault', 'playwright-core', 'pino-pretty'];

test('loading the CLI loads none of the server engines', () => {
  const main = join(__dirname, 'main.ts');
  const loaded = execFileSync(
    process.execPath,
    ['--import', 'tsx', '-e', `require(${JSON.stringify(main)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`],
    { encoding: 'utf8' },
  );
  const engines = new Set<string>();
  for (const file of JSON.parse(loaded) as string[]) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (match && SERVER_ENGINES.includes(match[1]!)) engines.add(match[1]!);
  }
  expect([...engines]).toEqual([]);
}, 30_000);
