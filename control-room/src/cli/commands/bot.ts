import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import {
  BotName,
  BotVersion,
  DsseEnvelope,
  OrderlyError,
  PackageDetailView,
  PackageStatusView,
  PackageView,
  PermissionDiffView,
  ReleaseAttestationView,
} from '@orderly/shared';
import { BotInventoryView, inventoryToCsv, InventoryBot } from '../../compliance/inventory';
import { BotOwnerView } from '../../packages/ownership';
import { diffLines } from '../../packages/permission-diff';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { packBot } from '../pack';
import { botTryCommand } from './bot-try';

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
      const data = {
        name: packed.manifest.name,
        version: packed.manifest.version,
        digest: packed.digest,
        package: `${base}.tgz`,
        envelope: `${base}.dsse.json`,
        bytes: packed.archive.length,
      };
      output(opts.json, data, [`packed ${data.name}@${data.version} ${data.digest}`, `  ${data.package}`, `  ${data.envelope}`]);
    });
  bot.addCommand(botTryCommand());
  bot
    .command('publish')
    .description('upload a package and its envelope to the control room')
    .argument('<package>', 'the .tgz made by bot pack')
    .option('--envelope <file>', 'the DSSE envelope (default: the .dsse.json beside the package)')
    .option('--team <team>', "a new bot name's owning team, when the key's holder is in several")
    .option('--json', 'machine-readable output')
    .action(async (pkg: string, opts: { envelope?: string; team?: string; json?: boolean }) => {
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
      const view = await client().request('POST', '/v1/packages', PackageView, {
        archive: read(pkg).toString('base64'),
        envelope: envelope.data,
        ...(opts.team ? { team: opts.team } : {}),
      });
      output(opts.json, view, `published ${view.name}@${view.version} ${view.digest}`);
    });
  bot
    .command('ls')
    .description('list published packages: publisher, publisher key (revoked?), channels, and where each may run')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { packages } = await client().request('GET', '/v1/packages', z.object({ packages: z.array(PackageStatusView) }));
      output(opts.json, packages, packages.length ? packages.map(packageLine) : 'no packages published');
    });
  bot
    .command('show')
    .description('show one package version with its release attestations')
    .argument('<name@version>', 'e.g. eligibility-check@1.0.0')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { name, version } = parseRef(ref);
      const pkg = await client().request('GET', `/v1/packages/${name}/${version}`, PackageDetailView);
      output(opts.json, pkg, [packageLine(pkg), ...pkg.attestations.map(attestationLine)]);
    });
  bot
    .command('promote')
    .description('promote NAME@VERSION to a channel: the control room signs a release attestation (you must not be its publisher)')
    .argument('<name@version>', 'e.g. eligibility-check@1.0.0')
    .requiredOption('--to <channel>', 'the channel: prod')
    .option('--expires-in-days <n>', 'days the release is valid (1-365, default 90)')
    .option('--ticket <ref>', 'a change ticket reference, recorded in the attestation')
    .option('--yes', 'promote although the version adds permissions to prod (the diff printed above)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { to: string; expiresInDays?: string; ticket?: string; yes?: boolean; json?: boolean }) => {
      const { name, version } = parseRef(ref);
      if (opts.to !== 'prod') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'packages are promoted to prod (dev runs publisher-signed packages)');
      const days = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays);
      if (days !== undefined && !Number.isInteger(days)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', '--expires-in-days takes a whole number of days');
      // The approver sees what the version adds to prod first; the promotion acknowledges exactly that diff.
      const api = client();
      const diff = await api.request('GET', `/v1/packages/${name}/${version}/permissions`, PermissionDiffView);
      if (!opts.json) process.stderr.write(`${diffLines(diff).join('\n')}\n`);
      if (diff.widens && !opts.yes) {
        if (opts.json) output(true, { permissions: diff }, '');
        throw new OrderlyError('ORDERLY_E_CONFIRMATION_REQUIRED', `${name}@${version} adds permissions to prod (above); run again with --yes to promote it`);
      }
      const body = {
        channel: opts.to,
        ...(days === undefined ? {} : { expiresInDays: days }),
        ...(opts.ticket ? { ticket: opts.ticket } : {}),
        ...(diff.widens ? { acknowledgePermissions: diff.diffDigest } : {}),
      };
      const attestation = await api.request(
        'POST',
        `/v1/packages/${name}/${version}/promote`,
        ReleaseAttestationView.extend({ permissions: PermissionDiffView.optional() }),
        body,
      );
      output(opts.json, attestation, `promoted ${name}@${version} to ${attestation.channel} until ${attestation.expiresAt} (approver ${attestation.approver})`);
    });
  bot
    .command('permissions')
    .description('what NAME@VERSION adds (credentials, hosts, PHI fields, segments) to the version in prod')
    .argument('<name@version>', 'e.g. eligibility-check@1.1.0')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { name, version } = parseRef(ref);
      const diff = await client().request('GET', `/v1/packages/${name}/${version}/permissions`, PermissionDiffView);
      output(opts.json, diff, diffLines(diff));
    });
  bot
    .command('owners')
    .description('list bot names and the team that owns each')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { owners } = await client().request('GET', '/v1/bots/owners', z.object({ owners: z.array(BotOwnerView) }));
      output(
        opts.json,
        owners,
        owners.length
          ? owners.map(
              (o) =>
                `${o.bot}  team ${o.team}  claimed by ${o.claimedBy} at ${o.claimedAt}${o.transferredAt ? `, transferred by ${o.transferredBy} at ${o.transferredAt}` : ''}`,
            )
          : 'no bot name has an owner',
      );
    });
  bot
    .command('transfer')
    .description('move a bot name to another team (security team; audited; needs a fresh second factor)')
    .argument('<name>', 'the bot name')
    .requiredOption('--to <team>', 'the new owning team')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { to: string; json?: boolean }) => {
      if (!BotName.safeParse(name).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'bot names are lower-case letters, digits and single dashes');
      const owner = await client().request('POST', `/v1/bots/${name}/transfer`, BotOwnerView, { team: opts.to });
      output(opts.json, owner, `${owner.bot} now belongs to team ${owner.team}`);
    });
  bot
    .command('inventory')
    .description(
      "the bot data inventory: each bot's owner, data steward and security contact, PHI fields, hosts, credentials, segments, schedules and last run (compliance.read)",
    )
    .option('--json', 'machine-readable output')
    .option('--csv', 'CSV (RFC 4180), one row per bot')
    .action(async (opts: { json?: boolean; csv?: boolean }) => {
      if (opts.json && opts.csv) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'choose one of --json and --csv');
      const inventory = await client().request('GET', '/v1/compliance/inventory', BotInventoryView);
      if (opts.csv) {
        process.stdout.write(inventoryToCsv(inventory));
        return;
      }
      output(opts.json, inventory, inventory.bots.length ? inventory.bots.map(inventoryLine) : 'no packages published');
    });
  return bot;
}

/** Printable on a terminal: control characters (escape sequences) shown as `?`. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

function inventoryLine(b: InventoryBot): string {
  const contacts = b.contacts
    ? `owner ${b.contacts.owner}, steward ${b.contacts.dataSteward}, security ${b.contacts.securityContact}`
    : b.productionSegments.length
      ? 'NO CONTACTS'
      : 'no contacts';
  const list = (xs: string[]) => (xs.length ? xs.join(',') : '-');
  const lastRun = b.lastRun ? `${b.lastRun.status} at ${b.lastRun.createdAt} in ${b.lastRun.segment}` : 'never';
  return printable(
    `${b.name}@${b.version}  team ${b.team ?? '(none)'}  ${contacts}  phi [${list(b.phi)}]  hosts [${list(b.hosts)}]  credentials [${list(b.credentials)}]  segments [${list(b.segments)}]` +
      `  production [${list(b.productionSegments)}]  schedules [${list(b.schedules.map((s) => `${s.name}${s.paused ? ' (paused)' : ''}`))}]  last run ${lastRun}`,
  );
}

/** `name@version`, validated before it goes into a URL path. */
function parseRef(ref: string): { name: string; version: string } {
  const at = ref.lastIndexOf('@');
  const name = BotName.safeParse(ref.slice(0, at));
  const version = BotVersion.safeParse(ref.slice(at + 1));
  if (at <= 0 || !name.success || !version.success)
    throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `expected NAME@VERSION (e.g. eligibility-check@1.0.0), got ${ref.slice(0, 100)}`);
  return { name: name.data, version: version.data };
}

function packageLine(p: PackageStatusView): string {
  const where = (['dev', 'prod'] as const).map((c) => `${c}: ${p.runnable[c] ? 'runnable' : `no (${p.notRunnable[c] ?? 'unknown'})`}`).join(', ');
  const key = `${p.publisherKeyId.slice(0, 12)}${p.publisherKeyRevokedAt ? ' REVOKED' : ''}`;
  return `${p.name}@${p.version}  ${p.digest.slice(0, 19)}  key ${key}  by ${p.publishedByActor ?? '(unrecorded)'}  team ${p.team ?? '(none)'}  channels [${p.channels.join(',')}]  ${where}`;
}

function attestationLine(a: ReleaseAttestationView): string {
  const state = !a.valid ? 'INVALID' : a.expired ? 'expired' : 'valid';
  return `  #${a.id} ${a.channel} by ${a.approver} at ${a.approvedAt}, until ${a.expiresAt}${a.ticket ? `, ticket ${a.ticket}` : ''}: ${state}`;
}
