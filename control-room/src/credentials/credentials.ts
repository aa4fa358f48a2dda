import { BotName, credentialPath, CREDENTIALS_KV_MOUNT, ErrorCode, isOrderlyError, OrderlyError } from '@orderly/shared';
import type { KvMetadata, VaultClient } from '@orderly/shared/vault';
import { AuditLog } from '../audit/audit';
import { Db } from '../db/db';
import {
  CredentialParams,
  CredentialStatusView,
  CredentialWriteView,
  MIN_CREDENTIAL_VALUE_CHARS,
  RotateCredentialRequest,
  SetCredentialRequest,
} from '@orderly/shared';

/** Who asked, from where: recorded with every audit event. */
export interface RequestContext {
  actor: string;
  sourceIp?: string;
  requestId?: string;
}

export interface CredentialsOptions {
  db: Db;
  audit: AuditLog;
  /** The control room's own Vault client; undefined when VAULT_ADDR is not configured. */
  vault: VaultClient | undefined;
  /** Max age of a credential that has none of its own (ORDERLY_CREDENTIAL_MAX_AGE_DAYS). */
  defaultMaxAgeDays: number;
  now?: () => Date;
}

interface RotationRow {
  bot: string;
  name: string;
  version: number;
  actor: string;
  at: Date;
  max_age_days: number | null;
}

const DAY_MS = 24 * 3600 * 1000;
/** Metadata reads in flight at once for a status listing. */
const STATUS_CONCURRENCY = 8;

/**
 * Sets and rotates bot credentials in Vault (KV v2, `secret/orderly/bots/<bot>/<name>`, data
 * `{ value }`) with check-and-set, records who wrote which version, and reports their age.
 *
 * The value passes through exactly one place, the Vault write: it is never logged, stored here,
 * put in an error or an audit event, or returned.
 */
export class Credentials {
  private readonly now: () => Date;

  constructor(private readonly options: CredentialsOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Creates or overwrites a credential; check-and-set against the version it read. */
  async set(ctx: RequestContext, target: CredentialParams, request: SetCredentialRequest): Promise<CredentialWriteView> {
    return this.write('set', ctx, target, request.value, undefined, request.maxAgeDays);
  }

  /**
   * Writes a new version with `cas = expectedVersion ?? current version`: of two rotations that
   * expect the same version, Vault lets exactly one through; the other is a CAS conflict (409).
   */
  async rotate(ctx: RequestContext, target: CredentialParams, request: RotateCredentialRequest): Promise<CredentialWriteView> {
    return this.write('rotate', ctx, target, request.value, request.expectedVersion, undefined);
  }

  /** Parses a set/rotate request body with `parse`; a refused body is audited like any other failed attempt. */
  async parseAudited<T>(action: 'set' | 'rotate', ctx: RequestContext, target: CredentialParams, parse: () => T): Promise<T> {
    try {
      return parse();
    } catch (err) {
      await this.recordFailure(action, ctx, target, {}, err);
      throw err;
    }
  }

  private event(action: 'set' | 'rotate' | 'revoke_runs', ctx: RequestContext, target: CredentialParams | string) {
    return {
      actor: ctx.actor,
      action: `credential.${action}`,
      target: typeof target === 'string' ? target : `${target.bot}/${target.name}`,
      ...(ctx.sourceIp === undefined ? {} : { sourceIp: ctx.sourceIp }),
      ...(ctx.requestId === undefined ? {} : { requestId: ctx.requestId }),
    };
  }

  /** Audits a failed attempt with its error code, never the value. Best effort: the original error is what the caller sees. */
  private async recordFailure(
    action: 'set' | 'rotate',
    ctx: RequestContext,
    target: CredentialParams,
    details: Record<string, string | number | null>,
    err: unknown,
  ): Promise<void> {
    const code: ErrorCode = isOrderlyError(err) ? (err as OrderlyError).code : 'ORDERLY_E_INTERNAL';
    await this.options.audit.append({ ...this.event(action, ctx, target), outcome: 'failure', details: { ...details, code } }).catch(() => undefined);
  }

  private async write(
    action: 'set' | 'rotate',
    ctx: RequestContext,
    target: CredentialParams,
    value: string,
    expectedVersion: number | undefined,
    maxAgeDays: number | undefined,
  ): Promise<CredentialWriteView> {
    const details: Record<string, string | number | null> = {};
    let recorded = false;
    try {
      const vault = this.vault();
      await this.requireDeclared(target.bot, target.name);
      if (value.length < MIN_CREDENTIAL_VALUE_CHARS) {
        throw new OrderlyError(
          'ORDERLY_E_REDACTION_VALUE_TOO_SHORT',
          `a credential value must be at least ${MIN_CREDENTIAL_VALUE_CHARS} characters: a shorter one cannot be masked in logs safely`,
        );
      }
      const path = credentialPath(target.bot, target.name);
      const cas = expectedVersion ?? (await vault.kvReadMetadata(path, { mount: CREDENTIALS_KV_MOUNT }))?.currentVersion ?? 0;
      details.expectedVersion = cas;
      const written = await vault.kvWrite(path, { value }, { cas, mount: CREDENTIALS_KV_MOUNT });
      details.version = written.version;
      await this.options.db.transaction(async (tx) => {
        // A rotation keeps the credential's own max age; a set may change it.
        const previous = await tx.query<{ max_age_days: number | null }>(
          'SELECT max_age_days FROM credential_rotations WHERE bot = $1 AND name = $2 ORDER BY version DESC LIMIT 1',
          [target.bot, target.name],
        );
        const keptMaxAge = maxAgeDays ?? previous[0]?.max_age_days ?? null;
        if (keptMaxAge !== null) details.maxAgeDays = keptMaxAge;
        await tx.query(
          `INSERT INTO credential_rotations (bot, name, version, action, actor, at, max_age_days) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (bot, name, version) DO UPDATE SET action = EXCLUDED.action, actor = EXCLUDED.actor, at = EXCLUDED.at, max_age_days = EXCLUDED.max_age_days`,
          [target.bot, target.name, written.version, action, ctx.actor, this.now().toISOString(), keptMaxAge],
        );
        await this.options.audit.append({ ...this.event(action, ctx, target), outcome: 'success', details }, tx);
      });
      recorded = true;
      return { bot: target.bot, name: target.name, version: written.version, createdAt: written.createdTime };
    } catch (err) {
      // Failures are audited too (a CAS conflict, a refusal, Vault down): with the code, never the value.
      if (!recorded) await this.recordFailure(action, ctx, target, details, err);
      throw err;
    }
  }

  /**
   * Revokes the Vault tokens of a bot's active runs (through the accessors their runners
   * reported), e.g. after a credential leaked. The runs lose Vault access at once; audited.
   */
  async revokeRuns(ctx: RequestContext, bot: BotName): Promise<{ revoked: number; runs: string[] }> {
    const vault = this.vault();
    const leases = await this.options.db.query<{ run_id: string; attempt: number; accessor: string }>(
      `SELECT l.run_id, l.attempt, l.accessor FROM run_leases l JOIN runs r ON r.id = l.run_id
       WHERE r.bot_name = $1 AND r.status = 'active' AND l.released_at IS NULL`,
      [bot],
    );
    const revoked: string[] = [];
    try {
      for (const lease of leases) {
        await vault.revokeAccessor(lease.accessor);
        await this.options.db.query('UPDATE run_leases SET released_at = now() WHERE run_id = $1 AND attempt = $2', [lease.run_id, lease.attempt]);
        revoked.push(lease.run_id);
      }
      await this.options.audit.append({ ...this.event('revoke_runs', ctx, bot), outcome: 'success', details: { revoked: revoked.length } });
      return { revoked: revoked.length, runs: revoked };
    } catch (err) {
      const code: ErrorCode = isOrderlyError(err) ? (err as OrderlyError).code : 'ORDERLY_E_INTERNAL';
      await this.options.audit
        .append({ ...this.event('revoke_runs', ctx, bot), outcome: 'failure', details: { revoked: revoked.length, code } })
        .catch(() => undefined);
      throw err;
    }
  }

  /** Status of every credential declared by the published bots (or by `bot`). */
  async status(bot?: BotName): Promise<CredentialStatusView[]> {
    const vault = this.vault();
    const declared = await this.declared(bot);
    if (bot !== undefined && !declared.known) throw new OrderlyError('ORDERLY_E_BOT_UNKNOWN', `no published package for ${bot}`, { bot });
    const latest = new Map<string, RotationRow>();
    const rows = await this.options.db.query<RotationRow>(
      `SELECT DISTINCT ON (bot, name) bot, name, version, actor, at, max_age_days FROM credential_rotations
       WHERE $1::text IS NULL OR bot = $1 ORDER BY bot, name, version DESC`,
      [bot ?? null],
    );
    for (const r of rows) latest.set(`${r.bot}/${r.name}`, r);
    const now = this.now().getTime();
    const views: CredentialStatusView[] = [];
    for (let i = 0; i < declared.credentials.length; i += STATUS_CONCURRENCY) {
      const batch = declared.credentials.slice(i, i + STATUS_CONCURRENCY);
      const metadata = await Promise.all(batch.map((c) => vault.kvReadMetadata(credentialPath(c.bot, c.name), { mount: CREDENTIALS_KV_MOUNT })));
      batch.forEach((c, j) => views.push(this.view(c.bot, c.name, metadata[j] ?? null, latest.get(`${c.bot}/${c.name}`), now)));
    }
    return views;
  }

  private view(bot: string, name: string, meta: KvMetadata | null, rotation: RotationRow | undefined, now: number): CredentialStatusView {
    const maxAgeDays = rotation?.max_age_days ?? this.options.defaultMaxAgeDays;
    const current = meta && meta.currentVersion > 0 ? meta.versions[String(meta.currentVersion)] : undefined;
    const deleted = current !== undefined && (current.destroyed || (current.deletionTime !== '' && Date.parse(current.deletionTime) <= now));
    if (!meta || !current || deleted) {
      return {
        bot,
        name,
        exists: false,
        version: meta && meta.currentVersion > 0 ? meta.currentVersion : null,
        createdAt: meta?.createdTime ?? null,
        updatedAt: current?.createdTime ?? null,
        ageDays: null,
        rotatedBy: null,
        rotatedAt: null,
        maxAgeDays,
        overdue: false,
      };
    }
    const ageMs = Math.max(0, now - Date.parse(current.createdTime));
    // Only a record of this very version says who wrote it; a newer version was written outside Orderly.
    const byOrderly = rotation !== undefined && rotation.version === meta.currentVersion;
    return {
      bot,
      name,
      exists: true,
      version: meta.currentVersion,
      createdAt: meta.createdTime,
      updatedAt: current.createdTime,
      ageDays: Math.floor(ageMs / DAY_MS),
      rotatedBy: byOrderly ? rotation.actor : null,
      rotatedAt: byOrderly ? rotation.at.toISOString() : null,
      maxAgeDays,
      // A max age of 0 days means every version is already due.
      overdue: ageMs >= maxAgeDays * DAY_MS,
    };
  }

  private vault(): VaultClient {
    if (!this.options.vault) throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'the control room has no Vault (set VAULT_ADDR and VAULT_TOKEN_FILE)');
    return this.options.vault;
  }

  /**
   * The credentials declared by the published versions of the bots (any published version may
   * still be run, so a credential declared by any of them is managed).
   */
  private async declared(bot?: BotName): Promise<{ known: boolean; credentials: { bot: string; name: string }[] }> {
    const bots = await this.options.db.query<{ name: string }>('SELECT DISTINCT name FROM packages WHERE $1::text IS NULL OR name = $1', [bot ?? null]);
    const credentials = await this.options.db.query<{ bot: string; name: string }>(
      `SELECT DISTINCT p.name AS bot, c.name AS name FROM packages p CROSS JOIN LATERAL jsonb_array_elements_text(p.manifest->'credentials') AS c(name)
       WHERE $1::text IS NULL OR p.name = $1 ORDER BY 1, 2`,
      [bot ?? null],
    );
    return { known: bots.length > 0, credentials };
  }

  private async requireDeclared(bot: string, name: string): Promise<void> {
    const declared = await this.declared(bot as BotName);
    if (!declared.known) throw new OrderlyError('ORDERLY_E_BOT_UNKNOWN', `no published package for ${bot}`, { bot });
    if (!declared.credentials.some((c) => c.name === name)) {
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `${bot} declares no credential named ${name} (manifest "credentials")`, { bot, credential: name });
    }
  }
}
