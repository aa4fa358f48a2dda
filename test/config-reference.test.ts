// Keeps the README's configuration reference and the images' .env.example files true (issue 17):
// every variable the control room, runner and CLI read has a row with its default, and every
// variable a template sets is one of them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const reference = readme.slice(readme.indexOf('## Configuration reference'), readme.indexOf('\n## ', readme.indexOf('## Configuration reference') + 3));

/** name -> default cell, from the reference's `| \`NAME\` | default | … |` rows. */
const rows = new Map<string, string>();
for (const m of reference.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/gm)) rows.set(m[1] as string, (m[2] as string).trim());

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [path] : [];
  });
}

/** Variables read: keys of the config schemas, and env.X / env['X'] reads (not assignments). */
function variablesRead(): Set<string> {
  const names = new Set<string>();
  for (const file of ['control-room/src/config.ts', 'control-room/src/cli/config.ts', 'runner/src/config.ts']) {
    for (const m of readFileSync(join(root, file), 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]+): /gm)) names.add(m[1] as string);
  }
  for (const file of ['control-room/src', 'runner/src', 'shared/src'].flatMap((d) => sources(join(root, d)))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)\b|\['([A-Z][A-Z0-9_]+)'\])(?!\s*=[^=])/g))
      names.add((m[1] ?? m[2]) as string);
  }
  return names;
}

test('every configuration variable the code reads is in the README reference, with its default', () => {
  const read = [...variablesRead()];
  expect(read.length).toBeGreaterThan(50);
  expect(read.filter((name) => !rows.has(name))).toEqual([]);
  expect(read.filter((name) => rows.get(name) === '')).toEqual([]);
});

test('one .env.example per image, each variable in it documented', () => {
  const dockerfiles = [
    'Dockerfile.runner',
    ...readdirSync(join(root, 'images'))
      .filter((f) => f.startsWith('Dockerfile.'))
      .map((f) => `images/${f}`),
  ];
  const examples = readdirSync(join(root, 'images')).filter((f) => f.endsWith('.env.example'));
  expect(examples.map((f) => f.replace('.env.example', '')).sort()).toEqual(dockerfiles.map((f) => f.replace(/^.*Dockerfile\./, '')).sort());
  for (const example of examples) {
    const set = [...readFileSync(join(root, 'images', example), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1] as string);
    expect(set.length).toBeGreaterThan(3);
    expect({ example, undocumented: set.filter((name) => !rows.has(name)) }).toEqual({ example, undocumented: [] });
  }
});
