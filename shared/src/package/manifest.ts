import { z } from 'zod';
import { OrderlyError } from '../errors';
import { BotName, BotVersion, SegmentName } from '../ids';
import { InputSchema, PATTERN_ISSUE } from './input-schema';

/** A path inside a bot folder or package: relative, forward slashes, no `..`. */
export const RelativePath = z
  .string()
  .min(1)
  .max(100)
  .regex(/^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]+$/, 'a relative path without `.` or `..` segments');

/** Hosts the bot's browser may reach: `host`, `host:port`, or `*.domain`. */
export const HostPattern = z
  .string()
  .regex(/^(\*\.)?[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/i, 'host, host:port or *.domain')
  .max(253);

export const CredentialName = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/);

/**
 * A person (or team mailbox) answering for a bot: a name, an email address or `Name <email>`.
 * It starts with a letter or digit (so no spreadsheet formula) and holds no control characters or quotes.
 */
export const ContactName = z
  .string()
  .min(2)
  .max(200)
  .regex(
    /^[\p{L}\p{N}][\p{L}\p{M}\p{N} .,'_+@<>()-]*$/u,
    "a name or email address: letters, digits, spaces and . , ' _ + @ < > ( ) -, starting with a letter or digit",
  );

/** Who answers for a bot's data: required for bots that declare a production segment. */
export const BotContacts = z.strictObject({ owner: ContactName, dataSteward: ContactName, securityContact: ContactName });
export type BotContacts = z.infer<typeof BotContacts>;

/** bot.json: everything the control room and the runner need to know about a bot. */
export const BotManifest = z
  .strictObject({
    name: BotName,
    version: BotVersion,
    description: z.string().max(500).optional(),
    entry: RelativePath,
    segments: z.array(SegmentName).min(1).max(32),
    input: InputSchema,
    phi: z.array(z.string()).default([]),
    phiSelectors: z.array(z.string().min(1).max(500)).default([]),
    /** Form fields known to hold no PHI, left visible in screenshots (every other field is masked). */
    screenshotAllowFields: z.array(z.string().min(1).max(500)).default([]),
    hosts: z.array(HostPattern).default([]),
    /** False: an API-only bot; no browser context is opened and `ctx.page` throws. */
    browser: z.boolean().default(true),
    credentials: z.array(CredentialName).default([]),
    timeoutSeconds: z.number().int().min(1).max(3600).default(300),
    attempts: z.number().int().min(1).max(10).default(3),
    /** The bot's owner, data steward and security contact (45 CFR 164.308(a)(2)); required in production segments. */
    contacts: BotContacts.optional(),
  })
  .refine((m) => m.phi.every((field) => Object.hasOwn(m.input.properties, field)), { message: 'every phi field must be an input property', path: ['phi'] });
export type BotManifest = z.infer<typeof BotManifest>;

/** Parses bot.json text; every problem is listed by path, with a stable code. */
export function parseManifest(text: string): BotManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', 'bot.json is not valid JSON');
  }
  const result = BotManifest.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(manifest)'}: ${i.message}`);
    // A pattern the linear-time matcher cannot run has a code of its own: the fix is to rewrite it.
    if (result.error.issues.some((i) => i.code === 'custom' && i.params?.orderlyCode === PATTERN_ISSUE.orderlyCode)) {
      throw new OrderlyError('ORDERLY_E_INPUT_PATTERN_UNSUPPORTED', `bot.json has an input pattern RE2 cannot compile: ${problems.join('; ')}`, { problems });
    }
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `bot.json is invalid: ${problems.join('; ')}`, { problems });
  }
  return result.data;
}

/**
 * Refuses a manifest that names a production segment but no contacts: someone must answer for the
 * data a production bot touches. The control room calls it at publish with its production segments.
 */
export function requireContactsForProduction(manifest: BotManifest, prodSegments: readonly string[]): void {
  const prod = manifest.segments.filter((s) => prodSegments.includes(s));
  if (prod.length > 0 && !manifest.contacts) {
    throw new OrderlyError(
      'ORDERLY_E_CONTACTS_REQUIRED',
      `bot.json names production segments (${prod.join(', ')}) but no contacts: add "contacts": { "owner", "dataSteward", "securityContact" }`,
      { segments: prod },
    );
  }
}
