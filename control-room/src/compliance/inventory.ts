import { z } from 'zod';
import { BotContacts } from '@orderly/shared';
import { Queryable } from '../db/db';

/**
 * The bot data inventory: the data-flow map auditors ask for. One entry per bot name, from its
 * latest published version's manifest (who answers for it, the PHI fields it takes, the hosts it
 * reaches, the credentials it leases, where it may run), with its schedules and its last run.
 * Names and ids only: never an input, a result or a credential value.
 */
export const InventoryBotView = z.object({
  name: z.string(),
  team: z.string().nullable(),
  version: z.string(),
  digest: z.string(),
  publishedAt: z.string(),
  contacts: BotContacts.nullable(),
  phi: z.array(z.string()),
  hosts: z.array(z.string()),
  credentials: z.array(z.string()),
  segments: z.array(z.string()),
  /** The segments above that are production segments (`ORDERLY_PROD_SEGMENTS`). */
  productionSegments: z.array(z.string()),
  schedules: z.array(
    z.object({
      name: z.string(),
      version: z.string().nullable(),
      segment: z.string(),
      cron: z.string().nullable(),
      everySeconds: z.number().nullable(),
      paused: z.boolean(),
      lastFiredAt: z.string().nullable(),
    }),
  ),
  lastRun: z
    .object({ id: z.string(), version: z.string(), segment: z.string(), status: z.string(), createdAt: z.string(), finishedAt: z.string().nullable() })
    .nullable(),
});
export type InventoryBot = z.infer<typeof InventoryBotView>;
export const BotInventoryView = z.object({ v: z.literal(1), collectedAt: z.string(), bots: z.array(InventoryBotView) });
export type BotInventory = z.infer<typeof BotInventoryView>;

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

/** Reads the inventory: three queries, whatever the number of bots. */
export async function botInventory(db: Queryable, prodSegments: readonly string[], now = new Date()): Promise<BotInventory> {
  const packages = await db.query<Record<string, unknown>>(
    `SELECT DISTINCT ON (p.name) p.name, p.version, p.digest, p.manifest, p.created_at, t.name AS team
     FROM packages p LEFT JOIN bot_owners o ON o.name = p.name LEFT JOIN teams t ON t.id = o.team_id
     ORDER BY p.name, p.created_at DESC, p.version DESC`,
  );
  const schedules = await db.query<Record<string, unknown>>(
    'SELECT name, bot_name, bot_version, segment, cron, every_seconds, paused, last_fired_at FROM schedules ORDER BY bot_name, name',
  );
  const lastRuns = await db.query<Record<string, unknown>>(
    `SELECT DISTINCT ON (bot_name) id, bot_name, bot_version, segment, status, created_at, finished_at
     FROM runs ORDER BY bot_name, created_at DESC, id DESC`,
  );
  const runByBot = new Map(lastRuns.map((r) => [String(r.bot_name), r]));
  const bots = packages.map((p): InventoryBot => {
    const manifest = (p.manifest ?? {}) as Record<string, unknown>;
    const contacts = BotContacts.safeParse(manifest.contacts);
    const segments = strings(manifest.segments);
    const run = runByBot.get(String(p.name));
    return {
      name: String(p.name),
      team: p.team === null || p.team === undefined ? null : String(p.team),
      version: String(p.version),
      digest: String(p.digest),
      publishedAt: iso(p.created_at)!,
      contacts: contacts.success ? contacts.data : null,
      phi: strings(manifest.phi),
      hosts: strings(manifest.hosts),
      credentials: strings(manifest.credentials),
      segments,
      productionSegments: segments.filter((s) => prodSegments.includes(s)),
      schedules: schedules
        .filter((s) => s.bot_name === p.name)
        .map((s) => ({
          name: String(s.name),
          version: s.bot_version === null ? null : String(s.bot_version),
          segment: String(s.segment),
          cron: s.cron === null ? null : String(s.cron),
          everySeconds: s.every_seconds === null ? null : Number(s.every_seconds),
          paused: s.paused === true,
          lastFiredAt: iso(s.last_fired_at),
        })),
      lastRun: run
        ? {
            id: String(run.id),
            version: String(run.bot_version),
            segment: String(run.segment),
            status: String(run.status),
            createdAt: iso(run.created_at)!,
            finishedAt: iso(run.finished_at),
          }
        : null,
    };
  });
  return { v: 1, collectedAt: now.toISOString(), bots };
}

/** Bots whose latest version names a production segment but no contacts (the `inventory.contacts` check). */
export function botsWithoutContacts(inventory: BotInventory): string[] {
  return inventory.bots.filter((b) => b.productionSegments.length > 0 && b.contacts === null).map((b) => b.name);
}

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma or line break, quotes doubled; a
 * field a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) || safe !== safe.trim() ? `"${safe.replace(/"/g, '""')}"` : safe;
}

const CSV_COLUMNS = [
  'bot',
  'team',
  'version',
  'digest',
  'published_at',
  'owner',
  'data_steward',
  'security_contact',
  'phi_fields',
  'hosts',
  'credentials',
  'segments',
  'production_segments',
  'schedules',
  'last_run_at',
  'last_run_status',
  'last_run_segment',
] as const;

/** The inventory as CSV, one row per bot; lists are joined with `;`. */
export function inventoryToCsv(inventory: BotInventory): string {
  const rows = inventory.bots.map((b) => [
    b.name,
    b.team ?? '',
    b.version,
    b.digest,
    b.publishedAt,
    b.contacts?.owner ?? '',
    b.contacts?.dataSteward ?? '',
    b.contacts?.securityContact ?? '',
    b.phi.join(';'),
    b.hosts.join(';'),
    b.credentials.join(';'),
    b.segments.join(';'),
    b.productionSegments.join(';'),
    b.schedules
      .map((s) => `${s.name} (${s.segment}, ${s.cron !== null ? `cron ${s.cron}` : `every ${s.everySeconds}s`}${s.paused ? ', paused' : ''})`)
      .join(';'),
    b.lastRun?.createdAt ?? '',
    b.lastRun?.status ?? '',
    b.lastRun?.segment ?? '',
  ]);
  return [CSV_COLUMNS as readonly string[], ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}
