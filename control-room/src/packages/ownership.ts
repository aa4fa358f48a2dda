import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { BotName, OrderlyError } from '@orderly/shared';
import { AuditLog } from '../audit/audit';
import { RequestContext } from '../credentials/credentials';
import { Db, Queryable } from '../db/db';

/** A person or a service account, by stable id. */
export interface Holder {
  kind: 'user' | 'service';
  id: string;
}

export const TeamName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, '1-64 lower-case letters, digits, `.`, `_`, `-`');
export const MemberRef = z.strictObject({ kind: z.enum(['user', 'service']), name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/) });
export type MemberRef = z.infer<typeof MemberRef>;

export const TeamView = z.object({
  name: z.string(),
  members: z.array(z.object({ kind: z.enum(['user', 'service']), id: z.string(), name: z.string() })),
  bots: z.array(z.string()),
  createdAt: z.string(),
});
export type TeamView = z.infer<typeof TeamView>;

export const BotOwnerView = z.object({
  bot: z.string(),
  team: z.string(),
  claimedBy: z.string(),
  claimedAt: z.string(),
  transferredBy: z.string().nullable(),
  transferredAt: z.string().nullable(),
});
export type BotOwnerView = z.infer<typeof BotOwnerView>;

interface OwnerRow {
  name: string;
  team: string;
  team_id: string;
  claimed_by: string;
  claimed_at: Date;
  transferred_by: string | null;
  transferred_at: Date | null;
}

const ownerView = (r: OwnerRow): BotOwnerView => ({
  bot: r.name,
  team: r.team,
  claimedBy: r.claimed_by,
  claimedAt: r.claimed_at.toISOString(),
  transferredBy: r.transferred_by,
  transferredAt: r.transferred_at?.toISOString() ?? null,
});

const auditContext = (ctx: RequestContext) => ({
  actor: ctx.actor,
  ...(ctx.sourceIp === undefined ? {} : { sourceIp: ctx.sourceIp }),
  ...(ctx.requestId === undefined ? {} : { requestId: ctx.requestId }),
});

/**
 * The holder of a signing key, refusing a key bound to nobody (a row registered before keys had
 * holders): it would publish names no team owns and name no person for separation of duties.
 */
export function requireBoundKey(holder: Holder | null, bot: string): Holder {
  if (holder !== null) return holder;
  throw new OrderlyError(
    'ORDERLY_E_KEY_UNBOUND',
    'the signing key was registered before keys had holders and publishes nothing: register a key held by a person or a service account',
    { bot },
  );
}

/**
 * Who may publish a bot name: teams of people and service accounts. The first accepted publish
 * of a name claims it for the team of its signing key's holder; every later version must be
 * signed by a key whose holder is in that team. Moving a name to another team is a transfer: a
 * security action (step-up at the route), audited with both teams.
 */
export class Ownership {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
  ) {}

  async createTeam(ctx: RequestContext, name: string): Promise<TeamView> {
    const rows = await this.db.query<{ id: string }>(
      'INSERT INTO teams (id, name, created_by) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id',
      [randomUUID(), name, ctx.actor],
    );
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_IDENTITY_CONFLICT', `team ${name} already exists`, { team: name });
    return this.team(name);
  }

  async addMember(ctx: RequestContext, team: string, member: MemberRef): Promise<TeamView> {
    const teamId = await this.teamId(this.db, team);
    const holder = await this.resolveHolder(this.db, member);
    await this.db.query('INSERT INTO team_members (team_id, member_kind, member_id, added_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
      teamId,
      holder.kind,
      holder.id,
      ctx.actor,
    ]);
    return this.team(team);
  }

  async removeMember(team: string, member: MemberRef): Promise<TeamView> {
    const teamId = await this.teamId(this.db, team);
    const holder = await this.resolveHolder(this.db, member);
    await this.db.query('DELETE FROM team_members WHERE team_id = $1 AND member_kind = $2 AND member_id = $3', [teamId, holder.kind, holder.id]);
    return this.team(team);
  }

  async listTeams(): Promise<TeamView[]> {
    const names = await this.db.query<{ name: string }>('SELECT name FROM teams ORDER BY name');
    return Promise.all(names.map((r) => this.team(r.name)));
  }

  async owners(): Promise<BotOwnerView[]> {
    return (await this.db.query<OwnerRow>('SELECT o.*, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id ORDER BY o.name')).map(ownerView);
  }

  /** The owning team of `bot`, or null when no team owns it. */
  async ownerOf(bot: string, tx: Queryable = this.db): Promise<string | null> {
    const rows = await tx.query<{ team: string }>('SELECT t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE o.name = $1', [bot]);
    return rows[0]?.team ?? null;
  }

  /**
   * Moves `bot` to team `to`. A security action: the route needs step-up; the event names both
   * teams. Transferring to the team that owns it already is refused, so each event is a change.
   */
  async transfer(ctx: RequestContext, bot: BotName, to: string): Promise<BotOwnerView> {
    return this.db.transaction(async (tx) => {
      const toId = await this.teamId(tx, to);
      const known = await tx.query('SELECT 1 FROM packages WHERE name = $1 LIMIT 1', [bot]);
      if (known.length === 0) throw new OrderlyError('ORDERLY_E_BOT_UNKNOWN', `no published package for ${bot}`, { bot });
      const before = await tx.query<OwnerRow>(
        'SELECT o.*, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE o.name = $1 FOR UPDATE OF o',
        [bot],
      );
      const from = before[0]?.team ?? null;
      if (from === to) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `${bot} already belongs to team ${to}`, { bot, team: to });
      // A name published before owners existed gets its first owner this way (its publishers were unbound keys).
      await tx.query(
        `INSERT INTO bot_owners (name, team_id, claimed_by, transferred_by, transferred_at) VALUES ($1, $2, $3, $3, now())
         ON CONFLICT (name) DO UPDATE SET team_id = EXCLUDED.team_id, transferred_by = EXCLUDED.transferred_by, transferred_at = EXCLUDED.transferred_at`,
        [bot, toId, ctx.actor],
      );
      await this.audit.append({ ...auditContext(ctx), action: 'bot.transfer', target: bot, outcome: 'success', details: { from, to } }, tx);
      const rows = await tx.query<OwnerRow>('SELECT o.*, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE o.name = $1', [bot]);
      return ownerView(rows[0]!);
    });
  }

  /**
   * Decides, inside the publish transaction, whether a key held by `holder` may publish a version
   * of `bot`, claiming the name for a team on its first publish. Throws with nothing changed when
   * it may not. Serialised per name: the claim is an INSERT on the name's primary key, so of two
   * first publishes by different teams the second waits for the first and is then checked
   * against it.
   *
   * - A key bound to nobody (a row from before keys had holders) publishes nothing (ORDERLY_E_KEY_UNBOUND).
   * - Owned name: the holder must be a member of the owning team (ORDERLY_E_BOT_NOT_OWNED).
   * - New name: claimed for `requestedTeam`, or the holder's only team (ORDERLY_E_TEAM_REQUIRED).
   * - A name with versions but no owner (published by such unbound keys) is not claimed
   *   implicitly: the security team assigns it with a transfer.
   */
  async authorisePublish(
    tx: Queryable,
    bot: string,
    holder: Holder | null,
    requestedTeam: string | undefined,
    ctx: RequestContext,
  ): Promise<{ team: string; claimed: boolean }> {
    const bound = requireBoundKey(holder, bot);
    const owner = await tx.query<{ team_id: string; team: string }>(
      'SELECT o.team_id, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE o.name = $1 FOR SHARE OF o',
      [bot],
    );
    if (owner[0]) return { team: await this.requireMember(tx, bot, owner[0], bound), claimed: false };
    const published = await tx.query('SELECT 1 FROM packages WHERE name = $1 LIMIT 1', [bot]);
    if (published.length > 0) {
      throw new OrderlyError(
        'ORDERLY_E_BOT_NOT_OWNED',
        `${bot} was published before bot names had owners; the security team assigns it to a team first (orderly bot transfer)`,
        { bot },
      );
    }
    const teams = await tx.query<{ id: string; name: string }>(
      'SELECT t.id, t.name FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.member_kind = $1 AND m.member_id = $2 ORDER BY t.name',
      [bound.kind, bound.id],
    );
    const chosen = requestedTeam === undefined ? (teams.length === 1 ? teams[0] : undefined) : teams.find((t) => t.name === requestedTeam);
    if (!chosen) {
      const why =
        requestedTeam === undefined
          ? teams.length === 0
            ? "the signing key's holder is in no team"
            : `the signing key's holder is in ${teams.length} teams; name one with team`
          : `the signing key's holder is not in team ${requestedTeam}`;
      throw new OrderlyError('ORDERLY_E_TEAM_REQUIRED', `the first publish of ${bot} claims it for a team: ${why}`, { bot });
    }
    const inserted = await tx.query('INSERT INTO bot_owners (name, team_id, claimed_by) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING name', [
      bot,
      chosen.id,
      ctx.actor,
    ]);
    if (inserted.length === 0) {
      // Another publish claimed it first (it committed while this one waited): check against it.
      const winner = await tx.query<{ team_id: string; team: string }>(
        'SELECT o.team_id, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE o.name = $1',
        [bot],
      );
      return { team: await this.requireMember(tx, bot, winner[0]!, bound), claimed: false };
    }
    return { team: chosen.name, claimed: true };
  }

  /** Audits a first publish's claim, in its transaction (last: the audit chain's lock is held to commit). */
  async recordClaim(tx: Queryable, bot: string, team: string, ctx: RequestContext): Promise<void> {
    await this.audit.append({ ...auditContext(ctx), action: 'bot.claim', target: bot, outcome: 'success', details: { team } }, tx);
  }

  private async requireMember(tx: Queryable, bot: string, owner: { team_id: string; team: string }, holder: Holder): Promise<string> {
    const member = await tx.query('SELECT 1 FROM team_members WHERE team_id = $1 AND member_kind = $2 AND member_id = $3', [
      owner.team_id,
      holder.kind,
      holder.id,
    ]);
    if (member.length === 0) {
      throw new OrderlyError(
        'ORDERLY_E_BOT_NOT_OWNED',
        `${bot} belongs to team ${owner.team}; a new version must be signed by a key of a member of that team`,
        { bot, team: owner.team },
      );
    }
    return owner.team;
  }

  /** A person (by username or id) or a service account (by name or id), enabled. */
  async resolveHolder(tx: Queryable, ref: MemberRef): Promise<Holder> {
    const rows =
      ref.kind === 'user'
        ? await tx.query<{ id: string }>('SELECT id FROM users WHERE (id::text = $1 OR username = $1) AND disabled_at IS NULL', [ref.name])
        : await tx.query<{ id: string }>('SELECT id FROM service_accounts WHERE (id::text = $1 OR name = $1) AND disabled_at IS NULL', [ref.name]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no such ${ref.kind === 'user' ? 'person' : 'service account'}`, { kind: ref.kind });
    return { kind: ref.kind, id: rows[0].id };
  }

  /**
   * The holder a publisher key is bound to: a person, or a service account that a person owns
   * (separation of duties must be able to name the person behind every key).
   */
  async resolveKeyHolder(ref: MemberRef): Promise<Holder> {
    const holder = await this.resolveHolder(this.db, ref);
    if (holder.kind === 'service') {
      const rows = await this.db.query<{ owner_user_id: string | null }>('SELECT owner_user_id FROM service_accounts WHERE id = $1', [holder.id]);
      if (!rows[0]?.owner_user_id) {
        throw new OrderlyError(
          'ORDERLY_E_BAD_REQUEST',
          'a key held by a service account needs the person who owns it: set it first (orderly service-accounts owner)',
          { kind: 'service' },
        );
      }
    }
    return holder;
  }

  /**
   * Records the person who answers for a service account: keys it holds and packages it uploads
   * count as that person's for separation of duties at promotion.
   */
  async setServiceAccountOwner(ctx: RequestContext, account: string, user: string): Promise<{ serviceAccount: string; owner: string }> {
    const sa = await this.resolveHolder(this.db, { kind: 'service', name: account });
    const person = await this.resolveHolder(this.db, { kind: 'user', name: user });
    return this.db.transaction(async (tx) => {
      const before = await tx.query<{ owner_user_id: string | null }>('SELECT owner_user_id FROM service_accounts WHERE id = $1 FOR UPDATE', [sa.id]);
      await tx.query('UPDATE service_accounts SET owner_user_id = $2 WHERE id = $1', [sa.id, person.id]);
      await this.audit.append(
        {
          ...auditContext(ctx),
          action: 'service_account.owner',
          target: sa.id,
          outcome: 'success',
          details: { from: before[0]?.owner_user_id ?? null, to: person.id },
        },
        tx,
      );
      return { serviceAccount: sa.id, owner: person.id };
    });
  }

  private async teamId(tx: Queryable, name: string): Promise<string> {
    const rows = await tx.query<{ id: string }>('SELECT id FROM teams WHERE name = $1', [name]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no team ${name}`, { team: name });
    return rows[0].id;
  }

  private async team(name: string): Promise<TeamView> {
    const rows = await this.db.query<{ id: string; name: string; created_at: Date }>('SELECT * FROM teams WHERE name = $1', [name]);
    const team = rows[0];
    if (!team) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no team ${name}`, { team: name });
    const members = await this.db.query<{ kind: 'user' | 'service'; id: string; name: string }>(
      `SELECT m.member_kind AS kind, m.member_id::text AS id, COALESCE(u.username, s.name) AS name FROM team_members m
       LEFT JOIN users u ON m.member_kind = 'user' AND u.id = m.member_id
       LEFT JOIN service_accounts s ON m.member_kind = 'service' AND s.id = m.member_id
       WHERE m.team_id = $1 ORDER BY 1, 3`,
      [team.id],
    );
    const bots = await this.db.query<{ name: string }>('SELECT name FROM bot_owners WHERE team_id = $1 ORDER BY name', [team.id]);
    return { name: team.name, members, bots: bots.map((b) => b.name), createdAt: team.created_at.toISOString() };
  }
}
