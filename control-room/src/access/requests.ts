import { randomUUID } from 'node:crypto';
import { OrderlyError, SegmentName } from '@orderly/shared';
import type { AlertOutbox } from '../alerts/outbox';
import type { AuditLog } from '../audit/audit';
import type { Db, Queryable } from '../db/db';
import type { Identity } from '../identity/identity';
import type { RunnerIdentityView, UserView } from '../identity/schemas';
import { Binding, bindingsOf, covers, formatBinding, parseBinding, SENSITIVE_ROLES } from './bindings';
import { Principal } from './permissions';

export interface AccessRequestView {
  id: string;
  kind: 'grant_roles' | 'register_runner';
  target: string;
  rolesBefore: string[];
  rolesAfter: string[];
  segment: string | null;
  requestedBy: string;
  status: 'pending' | 'approved' | 'rejected';
  decidedBy: string | null;
  decidedAt: string | null;
  createdAt: string;
}

interface RequestRow {
  id: string;
  kind: 'grant_roles' | 'register_runner';
  target_id: string;
  target_name: string;
  roles_before: string[];
  roles_after: string[];
  segment: string | null;
  requested_by: string;
  status: 'pending' | 'approved' | 'rejected';
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
}

const view = (r: RequestRow): AccessRequestView => ({
  id: r.id,
  kind: r.kind,
  target: r.kind === 'grant_roles' ? `user:${r.target_name}` : `runner:${r.target_name}`,
  rolesBefore: r.roles_before,
  rolesAfter: r.roles_after,
  segment: r.segment,
  requestedBy: r.requested_by,
  status: r.status,
  decidedBy: r.decided_by,
  decidedAt: r.decided_at?.toISOString() ?? null,
  createdAt: r.created_at.toISOString(),
});

/**
 * The rules of identity changes that no single role table can express:
 *
 * - nobody grants a role they do not hold (a binding of theirs must cover each role added);
 * - granting `security`, `approver` or `admin`, or registering a runner for a production segment,
 *   is a pending request until a second person with `users.manage` confirms it, and raises an
 *   alert; until then the roles are not held and the runner's token admits nothing.
 *
 * The bootstrap admin token applies changes directly: it exists to create the first security
 * people, and whoever holds the file holds the control room's host anyway.
 */
export class AccessRequests {
  constructor(
    private readonly deps: {
      db: Db;
      identity: Identity;
      audit: AuditLog;
      alerts?: AlertOutbox | undefined;
      segments: readonly SegmentName[];
      prodSegments: readonly SegmentName[];
    },
  ) {}

  /** Parses role bindings, checking their segments exist; ORDERLY_E_BAD_REQUEST otherwise. */
  bindings(roles: readonly string[]): Binding[] {
    return [...new Set(roles)].map((text) => {
      const binding = parseBinding(text);
      if (!binding) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `${text} is not a role binding (a role, or developer@SEGMENT / operator@SEGMENT)`);
      if (binding.segment !== null && !this.deps.segments.includes(binding.segment))
        throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${binding.segment} is not served by this control room`, { segment: binding.segment });
      return binding;
    });
  }

  /** ORDERLY_E_GRANT_NOT_HELD unless the caller's own bindings cover every binding in `granted`. */
  assertGrantable(by: Principal, granted: readonly Binding[]): void {
    const own = bindingsOf(by.roles ?? []);
    const beyond = granted.filter((b) => !covers(own, b)).map(formatBinding);
    if (beyond.length > 0) throw new OrderlyError('ORDERLY_E_GRANT_NOT_HELD', 'nobody grants a role they do not hold', { roles: beyond.join(',') });
  }

  private needsSecondPerson = (by: Principal, added: readonly Binding[]): boolean => by.kind !== 'admin' && added.some((b) => SENSITIVE_ROLES.includes(b.role));

  /** Creates a person with the roles the caller may grant at once; sensitive ones wait for a second person. */
  async createUser(
    by: Principal,
    username: string,
    roles: readonly string[],
  ): Promise<{ user: UserView; enrolmentSecret: string; enrolmentExpiresAt: string; request?: AccessRequestView }> {
    const wanted = this.bindings(roles);
    this.assertGrantable(by, wanted);
    const now = wanted.filter((b) => !this.needsSecondPerson(by, [b])).map(formatBinding);
    // One transaction: the person and the pending request exist together or not at all.
    return this.deps.db.transaction(async (tx) => {
      const created = await this.deps.identity.users.create(username, now, by.actor, tx);
      if (now.length === wanted.length) return created;
      const request = await this.request(tx, by, {
        kind: 'grant_roles',
        targetId: created.user.id,
        targetName: username,
        before: now,
        after: wanted.map(formatBinding),
        segment: null,
      });
      return { ...created, request };
    });
  }

  /** Replaces a person's roles; when that adds a sensitive role, answers a pending request instead. */
  async setRoles(by: Principal, idOrUsername: string, roles: readonly string[]): Promise<{ user: UserView; request?: AccessRequestView }> {
    const user = this.deps.identity.users.view(await this.deps.identity.users.find(idOrUsername));
    if (by.kind === 'user' && by.id === user.id)
      throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'you cannot change your own roles', { permission: 'users.manage' });
    const wanted = this.bindings(roles);
    const added = wanted.filter((b) => !user.roles.includes(formatBinding(b)));
    this.assertGrantable(by, added);
    if (!this.needsSecondPerson(by, added)) return { user: await this.deps.identity.users.setRoles(user.id, wanted.map(formatBinding), by) };
    const request = await this.deps.db.transaction((tx) =>
      this.request(tx, by, {
        kind: 'grant_roles',
        targetId: user.id,
        targetName: user.username,
        before: user.roles,
        after: wanted.map(formatBinding),
        segment: null,
      }),
    );
    return { user, request };
  }

  /** Registers a runner; one for a production segment authenticates only once a second person confirms. */
  async registerRunner(
    by: Principal,
    name: string,
    segment: SegmentName,
    publicKeyPem?: string,
  ): Promise<RunnerIdentityView & { token: string; request?: AccessRequestView }> {
    if (by.kind === 'admin' || !this.deps.prodSegments.includes(segment)) return this.deps.identity.runners.register(name, segment, by.actor, { publicKeyPem });
    const requestId = randomUUID();
    return this.deps.db.transaction(async (tx) => {
      const registered = await this.deps.identity.runners.register(name, segment, by.actor, { publicKeyPem, pendingRequest: requestId, db: tx });
      const request = await this.request(
        tx,
        by,
        { kind: 'register_runner', targetId: registered.id, targetName: name, before: [], after: [], segment },
        requestId,
      );
      return { ...registered, request };
    });
  }

  /** Records a pending request, its audit event and its alert, in the caller's transaction. */
  private async request(
    tx: Queryable,
    by: Principal,
    r: { kind: AccessRequestView['kind']; targetId: string; targetName: string; before: readonly string[]; after: readonly string[]; segment: string | null },
    id: string = randomUUID(),
  ): Promise<AccessRequestView> {
    const [row] = await tx.query<RequestRow>(
      `INSERT INTO access_requests (id, kind, target_id, target_name, roles_before, roles_after, segment, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [id, r.kind, r.targetId, r.targetName, [...r.before], [...r.after], r.segment, by.actor],
    );
    const pending = view(row!);
    await this.deps.audit.append(
      {
        actor: by.actor,
        action: 'access.request',
        target: pending.target,
        outcome: 'success',
        details: { requestId: id, kind: r.kind, rolesAfter: r.after.join(','), segment: r.segment },
      },
      tx,
    );
    await this.deps.alerts?.accessRequested(tx, {
      kind: 'access.requested',
      requestId: id,
      request: r.kind,
      target: pending.target,
      roles: [...r.after],
      segment: r.segment,
      requestedBy: by.actor,
    });
    return pending;
  }

  async list(status: 'pending' | 'all' = 'pending'): Promise<AccessRequestView[]> {
    const rows = await this.deps.db.query<RequestRow>(
      `SELECT * FROM access_requests WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at DESC LIMIT 500`,
      [status === 'all' ? null : status],
    );
    return rows.map(view);
  }

  /**
   * A second person confirms (or rejects) a pending request. Not the requester, not the person
   * whose roles change; a grant whose target's roles moved since the request is stale and refused.
   */
  async decide(by: Principal, id: string, decision: 'approved' | 'rejected'): Promise<AccessRequestView> {
    return this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<RequestRow>('SELECT * FROM access_requests WHERE id::text = $1 FOR UPDATE', [id]);
      if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such access request');
      if (row.status !== 'pending') throw new OrderlyError('ORDERLY_E_ACCESS_REQUEST_INVALID', `the request is already ${row.status}`, { status: row.status });
      if (row.requested_by === by.actor)
        throw new OrderlyError('ORDERLY_E_ACCESS_REQUEST_INVALID', 'a second person must confirm: you made this request', { reason: 'own_request' });
      if (row.kind === 'grant_roles' && by.kind === 'user' && by.id === row.target_id)
        throw new OrderlyError('ORDERLY_E_ACCESS_REQUEST_INVALID', 'you cannot confirm a change of your own roles', { reason: 'own_roles' });
      if (row.kind === 'register_runner' && !by.permissions.has('runners.manage'))
        throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'confirming a runner needs runners.manage', { permission: 'runners.manage' });
      if (decision === 'approved') await this.apply(tx, row);
      const [updated] = await tx.query<RequestRow>('UPDATE access_requests SET status = $2, decided_by = $3, decided_at = now() WHERE id = $1 RETURNING *', [
        row.id,
        decision,
        by.actor,
      ]);
      const decided = view(updated!);
      await this.deps.audit.append(
        {
          actor: by.actor,
          action: decision === 'approved' ? 'access.approve' : 'access.reject',
          target: decided.target,
          outcome: 'success',
          details: { requestId: row.id, kind: row.kind, requestedBy: row.requested_by },
        },
        tx,
      );
      return decided;
    });
  }

  private async apply(tx: Queryable, row: RequestRow): Promise<void> {
    if (row.kind === 'register_runner') {
      await tx.query('UPDATE runner_identities SET pending_request = NULL WHERE id = $1 AND pending_request = $2', [row.target_id, row.id]);
      return;
    }
    const [user] = await tx.query<{ roles: string[] }>('SELECT roles FROM users WHERE id = $1 FOR UPDATE', [row.target_id]);
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
    if (!user || !same(user.roles, row.roles_before))
      throw new OrderlyError('ORDERLY_E_ACCESS_REQUEST_INVALID', "the person's roles changed since the request; make a new one", { reason: 'stale' });
    await tx.query('UPDATE users SET roles = $2 WHERE id = $1', [row.target_id, row.roles_after]);
  }
}
