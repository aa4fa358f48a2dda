import { randomBytes, randomUUID } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { badRequest } from './types';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random base62 string; rejection sampling keeps every character equally likely. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

/** Service tokens look like Vault 1.10+ tokens (`hvs.`), batch tokens like `hvb.`. */
export function newTokenId(type: 'service' | 'batch'): string {
  return `${type === 'batch' ? 'hvb' : 'hvs'}.${randomBase62(24)}`;
}

export const newAccessor = (): string => randomBase62(24);
export const newUuid = (): string => randomUUID();

/** RFC 3339 time as Vault prints it (UTC). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

export const unixSeconds = (ms: number): number => Math.floor(ms / 1000);

/** Seconds left until `expiresAt` (ms), never negative. */
export function secondsLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.floor((expiresAt - now) / 1000));
}

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration the way Vault's `parseutil.ParseDurationSecond` does: a number of seconds
 * (number or numeric string) or a Go duration such as `1h30m`, `60s`, plus `d` for days.
 * Returns undefined for an unparseable value so callers can word the error for their field.
 */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const s = value.trim();
  if (s === '') return 0;
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const [whole, amount, unit] = m;
    const factor = unit === undefined ? undefined : UNIT_SECONDS[unit];
    if (amount === undefined || factor === undefined) return undefined;
    total += Number(amount) * factor;
    consumed += whole.length;
  }
  return consumed === s.length && consumed > 0 ? Math.floor(total) : undefined;
}

/** Formats seconds like Go's time.Duration.String(): `0s`, `10m0s`, `3h25m19s`. */
export function formatGoDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard padded base64 strictly, as Go's base64.StdEncoding does; else undefined. */
export function decodeBase64Strict(value: string): Buffer | undefined {
  return STRICT_BASE64.test(value) ? Buffer.from(value, 'base64') : undefined;
}

/*
 * Request fields, parsed with zod on the receiving side. Vault's framework coerces loosely
 * (a TypeInt field takes "60", a TypeCommaStringSlice takes "a,b"), so these schemas accept
 * the same spellings real clients send and the dev Vault answers them like Vault would.
 */
const FieldSchemas = {
  string: z.union([z.string(), z.number().transform(String), z.boolean().transform(String)]),
  int: z.union([
    z.number().int(),
    z
      .string()
      .trim()
      .regex(/^-?\d+$/)
      .transform(Number),
  ]),
  bool: z.union([
    z.boolean(),
    z.enum(['true', '1']).transform(() => true),
    z.enum(['false', '0']).transform(() => false),
    z.literal(1).transform(() => true),
    z.literal(0).transform(() => false),
  ]),
  duration: z.union([z.number(), z.string()]).transform((value, ctx) => {
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined) {
      ctx.addIssue({ code: 'custom', message: 'not a duration' });
      return z.NEVER;
    }
    return seconds;
  }),
  stringList: z.union([z.string().transform((v) => v.split(',')), z.array(z.string())]).transform((list) => list.map((x) => x.trim()).filter((x) => x !== '')),
  stringMap: z.record(z.string(), z.string()),
};

/** Reads one field: absent (or null, or "" where Vault treats it as unset) is undefined. */
function readField<T>(schema: z.ZodType<T>, body: Record<string, unknown>, field: string, emptyIsUnset: boolean): T | undefined {
  const value = body[field];
  if (value === undefined || value === null || (emptyIsUnset && value === '')) return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(`error converting input for field "${field}"`);
  return result.data;
}

export const fieldString = (body: Record<string, unknown>, field: string): string | undefined => readField(FieldSchemas.string, body, field, false);
export const fieldInt = (body: Record<string, unknown>, field: string): number | undefined => readField(FieldSchemas.int, body, field, true);
export const fieldBool = (body: Record<string, unknown>, field: string): boolean | undefined => readField(FieldSchemas.bool, body, field, true);
export const fieldDuration = (body: Record<string, unknown>, field: string): number | undefined => readField(FieldSchemas.duration, body, field, false);
/** A list given as a JSON array or as a comma-separated string (Vault's TypeCommaStringSlice). */
export const fieldStringList = (body: Record<string, unknown>, field: string): string[] | undefined => readField(FieldSchemas.stringList, body, field, false);
export const fieldStringMap = (body: Record<string, unknown>, field: string): Record<string, string> | undefined =>
  readField(FieldSchemas.stringMap, body, field, false);

/** Validates a CIDR list (or bare addresses) up front so a typo fails the write, not the login. */
export function parseCidrs(list: string[], field: string): string[] {
  for (const entry of list) {
    if (cidrParts(entry) === undefined) throw badRequest(`invalid CIDR "${entry}" in "${field}"`);
  }
  return list;
}

function cidrParts(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText] = entry.split('/');
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address, prefix, family };
}

/** True when `remote` is inside one of `cidrs`; an empty list binds nothing. */
export function addressAllowed(remote: string, cidrs: readonly string[]): boolean {
  if (cidrs.length === 0) return true;
  const plain = remote.startsWith('::ffff:') && isIP(remote.slice(7)) === 4 ? remote.slice(7) : remote;
  const version = isIP(plain);
  if (version === 0) return false;
  const list = new BlockList();
  for (const entry of cidrs) {
    const parts = cidrParts(entry);
    if (parts !== undefined) list.addSubnet(parts.address, parts.prefix, parts.family);
  }
  return list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
}

/** Sorted, de-duplicated list (Vault sorts policy lists in answers). */
export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}
