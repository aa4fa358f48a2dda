import { createWriteStream, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadPublicKey, OrderlyError } from '@orderly/shared';
import { AuditRecord } from '../../audit/audit';
import { toCefLine, toJsonLine } from '../../audit/export';
import { AuditHead } from '../../audit/heads';
import { AuditEventsPage, AuditHeadsPage } from '../../audit/schemas';
import { AuditVerdict, AuditVerifier } from '../../audit/verify';
import { ApiClient, fetchText } from '../api-client';
import { output } from '../output';

/**
 * `orderly audit verify` and `orderly audit export`. Verification runs here, on the client, from
 * the events and signed heads the API hands out: a compromised or buggy server cannot vouch for
 * itself. Pin the release public key with `--release-key` (otherwise it is fetched from the
 * control room's public route, which only protects against tampering in the database).
 */

const PAGE = 1000;

const instant = (raw: string): string => {
  if (Number.isNaN(Date.parse(raw)) || !/^\d{4}-\d{2}-\d{2}/.test(raw))
    throw new InvalidArgumentError('an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z');
  return new Date(raw).toISOString();
};

/** Every event (within since/until), page by page in seq order. */
async function* events(api: ApiClient, range: { since?: string; until?: string } = {}): AsyncGenerator<AuditRecord> {
  for (let after = 0; ;) {
    const query = new URLSearchParams({
      afterSeq: String(after),
      limit: String(PAGE),
      ...(range.since ? { since: range.since } : {}),
      ...(range.until ? { until: range.until } : {}),
    });
    const page = await api.request('GET', `/v1/audit/events?${query.toString()}`, AuditEventsPage);
    for (const event of page.events) yield event;
    if (page.nextAfterSeq === null) return;
    after = page.nextAfterSeq;
  }
}

async function heads(api: ApiClient): Promise<AuditHead[]> {
  const all: AuditHead[] = [];
  for (let after = 0; ;) {
    const page = await api.request('GET', `/v1/audit/heads?afterSeq=${after}&limit=${PAGE}`, AuditHeadsPage);
    all.push(...page.heads);
    if (page.nextAfterSeq === null) return all;
    after = page.nextAfterSeq;
  }
}

/** Fetches and verifies the whole retained log; exported for tests of the CLI path. */
export async function verifyRemoteAuditLog(api: ApiClient, releaseKeyPem?: string): Promise<AuditVerdict> {
  const pem = releaseKeyPem ?? (await fetchText(api.url, '/v1/audit/release-key'));
  let publicKey;
  try {
    publicKey = loadPublicKey(pem);
  } catch {
    throw new OrderlyError('ORDERLY_E_KEY_INVALID', 'the release public key is not an Ed25519 PEM');
  }
  // Heads first: a head signed while events are being read must not look like a cut tail.
  const signed = await heads(api);
  const verifier = new AuditVerifier();
  for await (const event of events(api)) verifier.push(event);
  return verifier.finish(signed, publicKey);
}

export function auditCommand(client: () => ApiClient): Command {
  const audit = new Command('audit').description('the audit log: verify its chain and signed heads, export it');

  audit
    .command('verify')
    .description('recompute the hash chain and check the signed heads; exits 1 and names the first broken link')
    .option('--release-key <file>', 'the release public key (PEM) to verify heads with; default: fetched from the control room')
    .option('--json', 'machine-readable output')
    .action(async (opts: { releaseKey?: string; json?: boolean }) => {
      const verdict = await verifyRemoteAuditLog(client(), opts.releaseKey ? readFileSync(opts.releaseKey, 'utf8') : undefined);
      output(
        opts.json,
        verdict,
        verdict.ok
          ? `audit log intact: ${verdict.events} events (seq ${verdict.firstSeq ?? '-'}..${verdict.lastSeq ?? '-'}), ${verdict.headsChecked} signed heads checked${verdict.anchoredByExpiry ? ', starting after an audit.expire record' : ''}`
          : `audit log broken at seq ${verdict.seq}: ${verdict.reason}`,
      );
      if (!verdict.ok) process.exitCode = 1;
    });

  audit
    .command('export')
    .description('write events as JSON lines or CEF lines (for a SIEM)')
    .option('--since <time>', 'from this time (inclusive, ISO 8601)', instant)
    .option('--until <time>', 'up to this time (exclusive, ISO 8601)', instant)
    .addOption(new Option('--format <format>', 'jsonl or cef').choices(['jsonl', 'cef']).default('jsonl'))
    .option('--out <file>', 'write to this file (mode 0600) instead of stdout')
    .action(async (opts: { since?: string; until?: string; format: 'jsonl' | 'cef'; out?: string }) => {
      const format = opts.format === 'cef' ? toCefLine : toJsonLine;
      const sink: NodeJS.WritableStream = opts.out ? createWriteStream(opts.out, { mode: 0o600 }) : process.stdout;
      let count = 0;
      for await (const event of events(client(), { ...(opts.since ? { since: opts.since } : {}), ...(opts.until ? { until: opts.until } : {}) })) {
        if (!sink.write(`${format(event)}\n`)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
        count++;
      }
      if (opts.out) {
        await new Promise<void>((resolve, reject) => {
          sink.once('error', reject);
          sink.end(() => resolve());
        });
        process.stderr.write(`${count} events written to ${opts.out}\n`);
      }
    });
  return audit;
}
