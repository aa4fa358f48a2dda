import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { BotName, DsseEnvelope, OrderlyError, PackageView } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { packBot } from '../pack';

const TEMPLATE_MANIFEST = (name: string) => ({
  name,
  version: '0.1.0',
  entry: 'src/index.ts',
  segments: ['demo'],
  input: { type: 'object', properties: { portalUrl: { type: 'string', pattern: '^https?://' } }, required: ['portalUrl'] },
  phi: [],
  hosts: ['127.0.0.1', 'localhost'],
  credentials: [],
  timeoutSeconds: 60,
  attempts: 3,
});

const TEMPLATE_SOURCE = `import { defineBot } from '@orderly/shared/sdk';

export default defineBot<{ portalUrl: string }>({
  async run({ page, input, log }) {
    await page.goto(input.portalUrl);
    const title = await page.title();
    log.info({ title }, 'page opened');
    return { title };
  },
});
`;

export function botCommand(client: () => ApiClient): Command {
  const bot = new Command('bot').description('build, sign and publish bot packages');
  bot
    .command('init')
    .description('create a new bot folder NAME with bot.json and src/index.ts')
    .argument('<name>', 'bot name: lower-case letters, digits and dashes')
    .action((name: string) => {
      const parsed = BotName.safeParse(name);
      if (!parsed.success) throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', 'bot names are lower-case letters, digits and single dashes');
      if (existsSync(name)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `${name} already exists`);
      mkdirSync(join(name, 'src'), { recursive: true });
      writeFileSync(join(name, 'bot.json'), `${JSON.stringify(TEMPLATE_MANIFEST(name), null, 2)}\n`);
      writeFileSync(join(name, 'src', 'index.ts'), TEMPLATE_SOURCE);
      output(false, {}, [`created ${name}/bot.json and ${name}/src/index.ts`, `next: orderly bot pack ${name} --key publisher.key`]);
    });
  bot
    .command('pack')
    .description('bundle DIR into a deterministic .tgz and sign it (DSSE envelope over an in-toto statement)')
    .argument('<dir>', 'the bot folder (with bot.json)')
    .requiredOption('--key <file>', 'the publisher private key')
    .option('--out <dir>', 'where to write the package and envelope', '.')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { key: string; out: string; json?: boolean }) => {
      let keyPem: string;
      try {
        keyPem = readFileSync(opts.key, 'utf8');
      } catch {
        throw new OrderlyError('ORDERLY_E_KEY_INVALID', `cannot read the key file ${opts.key}`);
      }
      const packed = await packBot(dir, keyPem);
      mkdirSync(opts.out, { recursive: true });
      const base = join(opts.out, `${packed.manifest.name}-${packed.manifest.version}`);
      writeFileSync(`${base}.tgz`, packed.archive);
      writeFileSync(`${base}.dsse.json`, `${JSON.stringify(packed.envelope, null, 2)}\n`);
      const data = { name: packed.manifest.name, version: packed.manifest.version, digest: packed.digest, package: `${base}.tgz`, envelope: `${base}.dsse.json`, bytes: packed.archive.length };
      output(opts.json, data, [`packed ${data.name}@${data.version} ${data.digest}`, `  ${data.package}`, `  ${data.envelope}`]);
    });
  bot
    .command('publish')
    .description('upload a package and its envelope to the control room')
    .argument('<package>', 'the .tgz made by bot pack')
    .option('--envelope <file>', 'the DSSE envelope (default: the .dsse.json beside the package)')
    .option('--json', 'machine-readable output')
    .action(async (pkg: string, opts: { envelope?: string; json?: boolean }) => {
      const envelopePath = opts.envelope ?? join(pkg, '..', `${basename(pkg, '.tgz')}.dsse.json`);
      const read = (path: string) => {
        try {
          return readFileSync(path);
        } catch {
          throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `cannot read ${path}`);
        }
      };
      const envelope = DsseEnvelope.safeParse(JSON.parse(read(envelopePath).toString('utf8')));
      if (!envelope.success) throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', `${envelopePath} is not a DSSE envelope`);
      const view = await client().request('POST', '/v1/packages', PackageView, { archive: read(pkg).toString('base64'), envelope: envelope.data });
      output(opts.json, view, `published ${view.name}@${view.version} ${view.digest}`);
    });
  return bot;
}
