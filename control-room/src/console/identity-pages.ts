import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BotName, KeyId, OrderlyError } from '@orderly/shared';
import { can, Permission } from '../access/permissions';
import type { RequestContext } from '../credentials/credentials';
import type { AppDeps } from '../http/app';
import { parseRequest } from '../http/errors';
import type { ServiceAccountView } from '../identity/service-accounts';
import { CreateServiceAccountRequest, CreateTokenRequest, IdParam, SegmentParam } from '../identity/schemas';
import type { TokenView } from '../identity/schemas';
import { MemberRef, TeamName, TeamView } from '../packages/ownership';
import type { ActionKit } from './actions';
import { doneBanner, ShownOnce, stepUpNote } from './forms';
import { consolePath, Html, html, time } from './html';
import { table } from './layout';
import { expectNoFields, formFields } from './request-body';

/**
 * The security team's identity pages: API tokens (everyone's own; the security team sees and
 * revokes all), service accounts and their tokens and owner, and teams with their members and the
 * bot names they own (membership and transfers). Each route declares the permission and step-up
 * of the API route that makes the same change (`identity/routes.ts`, `packages/ownership-routes.ts`)
 * and calls the same service with the same checks; nothing here decides who may do what beyond
 * which forms to render.
 */

const TeamParam = z.strictObject({ team: TeamName });
const MemberParams = z.strictObject({ team: TeamName, kind: z.enum(['user', 'service']), name: MemberRef.shape.name });
const BotParam = z.strictObject({ name: BotName });
const OwnerParam = z.strictObject({ id: MemberRef.shape.name });

/** A form's optional field: an empty input is no value. */
const opt = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
/** Role bindings typed into one field, space- or comma-separated. */
const bindings = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);
/** A whole number typed into a field; anything else stays as typed, for the API schema to refuse. */
const num = (v: string | undefined): number | string | undefined => (opt(v) === undefined ? undefined : /^\d{1,9}$/.test(v!.trim()) ? Number(v) : v);

interface RouteOptions {
  permission: Permission;
  stepUp?: boolean;
  audit?: string;
  auditedByRoute?: 'all' | 'success';
}

function tokensTable(caption: string, tokens: readonly (TokenView & { current?: boolean })[], revocable: boolean, empty: string): Html {
  return table(
    caption,
    ['Name', 'Owner', 'Roles', 'Created', 'Expires', 'Last used', 'State', ...(revocable ? ['Actions'] : [])],
    tokens.map((t) => {
      const expired = Date.parse(t.expiresAt) <= Date.now();
      const state = t.revoked ? 'revoked' : expired ? 'expired' : t.current ? 'active (this one)' : 'active';
      return html`<tr><td>${t.name}</td><td>${t.owner}</td><td>${t.scopes.join(', ')}</td><td>${time(t.createdAt)}</td><td>${time(t.expiresAt)}</td><td>${time(t.lastUsedAt)}</td><td>${state}</td>
${revocable ? html`<td>${t.revoked || expired ? '' : html`<form method="post" action="/console/tokens/${t.id}/revoke" class="inline" data-confirm="Revoke token ${t.name} of ${t.owner}? It stops working at once."><button type="submit" class="danger">Revoke</button></form>`}</td>` : ''}</tr>`;
    }),
    empty,
  );
}

function tokenCreateForm(roles: readonly string[], maxDays: number): Html {
  return html`<h2>New API token</h2>
<form method="post" action="/console/tokens" class="filters" aria-label="New API token">
<label>Token name <input name="name" required maxlength="64" autocomplete="off"></label>
<label>Expires after (days, at most ${maxDays}) <input name="expiresInDays" inputmode="numeric" required maxlength="4" value="${Math.min(30, maxDays)}" autocomplete="off"></label>
<label>Roles (space-separated; empty: all of yours, ${roles.join(' ') || 'none'}) <input name="scopes" maxlength="400" size="24" autocomplete="off"></label>
<button type="submit">Create token</button>
</form>`;
}

function serviceAccountsTable(accounts: readonly ServiceAccountView[], tokens: readonly TokenView[]): Html {
  return html`${table(
    'Service accounts',
    ['Name', 'Roles', 'Created', 'State', 'Live tokens', 'Actions'],
    accounts.map((a) => {
      const mine = tokens.filter((t) => t.owner === `service:${a.name}` && !t.revoked && Date.parse(t.expiresAt) > Date.now());
      return html`<tr><td>${a.name}</td><td>${a.roles.join(', ')}</td><td>${time(a.createdAt)}</td><td>${a.disabled ? 'disabled' : 'active'}</td><td>${mine.length ? mine.map((t) => html`${t.name} (until ${time(t.expiresAt)}) `) : html`<span class="muted">none</span>`}</td>
<td>${
        a.disabled
          ? ''
          : html`<form method="post" action="/console/service-accounts/${a.id}/tokens" class="inline" aria-label="Issue a token for ${a.name}"><label>Token name <input name="name" required maxlength="64" size="12" autocomplete="off"></label> <label>Days <input name="expiresInDays" inputmode="numeric" required maxlength="4" size="3" value="30" autocomplete="off"></label> <button type="submit">Issue token</button></form>
<form method="post" action="/console/service-accounts/${a.id}/owner" class="inline" aria-label="Set the owner of ${a.name}"><label>Owner (username) <input name="user" required maxlength="100" size="12" autocomplete="off"></label> <button type="submit">Set owner</button></form>
<form method="post" action="/console/service-accounts/${a.id}/disable" class="inline" data-confirm="Disable service account ${a.name}? Its tokens stop working at once."><button type="submit" class="danger">Disable ${a.name}</button></form>`
      }</td></tr>`;
    }),
    'No service accounts yet.',
  )}
<p class="muted">A service account's tokens are revoked on the <a href="/console/tokens">API tokens</a> page.</p>
<h2>New service account</h2>
<form method="post" action="/console/service-accounts" class="filters" aria-label="New service account">
<label>Name <input name="name" required maxlength="64" autocomplete="off"></label>
<label>Roles (space-separated: developer, operator or auditor, possibly @SEGMENT) <input name="roles" required maxlength="400" size="30" autocomplete="off"></label>
<button type="submit">Create service account</button>
</form>`;
}

function teamsTable(teams: readonly TeamView[], manage: boolean): Html {
  const teamOptions = teams.map((t) => html`<option>${t.name}</option>`);
  const transferForm = (bot: string, from: string) =>
    html`<form method="post" action="/console/bots/${bot}/transfer" class="inline" aria-label="Transfer ${bot}"><label>Move ${bot} to <select name="team">${teams.filter((t) => t.name !== from).map((t) => html`<option>${t.name}</option>`)}</select></label> <button type="submit">Transfer ${bot}</button></form>`;
  return html`${table(
    'Teams',
    ['Team', 'Members', 'Bot names owned', 'Created'],
    teams.map(
      (t) => html`<tr><td>${t.name}</td>
<td>${t.members.length ? html`<ul>${t.members.map((m) => html`<li>${m.kind === 'user' ? 'person' : 'service account'} ${m.name}${manage ? html` <form method="post" action="/console/teams/${t.name}/members/${m.kind}/${m.name}/remove" class="inline" data-confirm="Remove ${m.name} from team ${t.name}?"><button type="submit" class="danger">Remove ${m.name}</button></form>` : ''}</li>`)}</ul>` : html`<span class="muted">no members</span>`}
${manage ? html`<form method="post" action="/console/teams/${t.name}/members" class="inline" aria-label="Add a member to ${t.name}"><label>Kind <select name="kind"><option value="user">person</option><option value="service">service account</option></select></label> <label>Name <input name="name" required maxlength="100" size="12" autocomplete="off"></label> <button type="submit">Add member</button></form>` : ''}</td>
<td>${t.bots.length ? html`<ul>${t.bots.map((b) => html`<li>${b}${manage && teams.length > 1 ? html` ${transferForm(b, t.name)}` : ''}</li>`)}</ul>` : html`<span class="muted">none</span>`}</td>
<td>${time(t.createdAt)}</td></tr>`,
    ),
    'No teams yet.',
  )}
${
  manage
    ? html`<h2>New team</h2>
<form method="post" action="/console/teams" class="filters" aria-label="New team">
<label>Team name <input name="name" required maxlength="64" autocomplete="off"></label>
<button type="submit">Create team</button>
</form>
${
  teams.length
    ? html`<h2>Give a bot name a team</h2>
<p class="muted">For a name no team owns yet (published before owners existed), or any other name: moving it is audited as <code>bot.transfer</code> with both teams.</p>
<form method="post" action="/console/bots/-/transfer" class="filters" aria-label="Transfer a bot name">
<label>Bot name <input name="bot" required maxlength="100" autocomplete="off"></label>
<label>To team <select name="team">${teamOptions}</select></label>
<button type="submit">Transfer bot name</button>
</form>`
    : ''
}`
    : ''
}`;
}

export function identityPages(scope: FastifyInstance, deps: AppDeps, kit: ActionKit): void {
  const identity = deps.identity!;
  const ownership = deps.ownership;
  const route = (method: 'GET' | 'POST', url: string, options: RouteOptions, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    scope.route({
      method,
      url,
      config: {
        permission: options.permission,
        ...(options.stepUp ? { stepUp: true } : {}),
        ...(options.audit ? { audit: options.audit } : {}),
        ...(options.auditedByRoute ? { auditedByRoute: options.auditedByRoute } : {}),
      },
      handler,
    });
  const form = (request: FastifyRequest) => formFields(request.body);
  const done = (reply: FastifyReply, path: string, what: string) => reply.redirect(consolePath(path, { done: what }), 303);
  const once = (reply: FastifyReply, answer: ShownOnce) => reply.header('cache-control', 'no-store').send(answer);
  const context = (request: FastifyRequest): RequestContext => ({ actor: kit.who(request).actor, sourceIp: request.ip, requestId: request.id });
  const queryDone = (request: FastifyRequest) => doneBanner((request.query as { done?: string }).done);

  // ---- Publisher keys: everyone with keys.read sees them; keys.manage revokes (step-up), as POST /v1/keys/:id/revoke.
  route('GET', '/console/keys', { permission: 'keys.read' }, async (request, reply) => {
    const manage = can(kit.who(request), 'keys.manage');
    const keys = await deps.keys.list();
    return kit.send(
      request,
      reply,
      'Publisher keys',
      html`${queryDone(request)}${manage ? stepUpNote('/console/keys') : ''}
<p class="muted">Packages are signed with these keys. Revoking one stops every package signed only by it from running, at once and for good.</p>
${table(
  'Publisher keys',
  ['Name', 'Key id', 'Registered', 'State', ...(manage ? ['Actions'] : [])],
  keys.map(
    (
      k,
    ) => html`<tr><td>${k.name}</td><td><code>${k.keyId}</code></td><td>${time(k.createdAt)}</td><td>${k.revokedAt ? html`revoked ${time(k.revokedAt)}` : 'active'}</td>
${manage ? html`<td>${k.revokedAt ? '' : html`<form method="post" action="/console/keys/${encodeURIComponent(k.keyId)}/revoke" class="inline" data-confirm="Revoke key ${k.name}? Packages signed only by it stop running."><button type="submit" class="danger">Revoke</button></form>`}</td>` : ''}</tr>`,
  ),
  'No publisher key is registered.',
)}`,
    );
  });
  route('POST', '/console/keys/:id/revoke', { permission: 'keys.manage', stepUp: true, audit: 'key.revoke' }, async (request, reply) => {
    const { id } = parseRequest(z.strictObject({ id: KeyId }), request.params, 'path');
    expectNoFields(request.body);
    request.auditTarget = `key:${id}`;
    await deps.keys.revoke(id, kit.who(request).actor);
    return done(reply, '/console/keys', 'key-revoked');
  });
  // The segment's bootstrap runner token and key, as DELETE /v1/runners/bootstrap/:segment (step-up).
  route(
    'POST',
    '/console/runners/bootstrap/:segment/revoke',
    { permission: 'runners.manage', stepUp: true, audit: 'runner.bootstrap_revoke' },
    async (request, reply) => {
      const { segment } = parseRequest(SegmentParam, request.params, 'path');
      expectNoFields(request.body);
      request.auditTarget = `segment:${segment}`;
      await identity.runners.revokeBootstrap(segment, kit.who(request).actor);
      return done(reply, '/console/runners', 'bootstrap-revoked');
    },
  );

  // ---- API tokens: your own (people create them, with step-up); the security team sees and revokes every one.
  route('GET', '/console/tokens', { permission: 'self' }, async (request, reply) => {
    const p = kit.who(request);
    const own = p.kind === 'user' || p.kind === 'service' ? await identity.tokens.list({ kind: p.kind, id: p.id }) : [];
    const current = p.credential?.kind === 'token' ? p.credential.tokenId : undefined;
    const everyone = can(p, 'users.manage') ? await identity.tokens.list('all') : undefined;
    return kit.send(
      request,
      reply,
      'API tokens',
      html`${queryDone(request)}
<p class="muted">Tokens let the CLI and CI act as you, with some of your roles, until they expire. A token's value is shown once, when it is made; the control room keeps only its hash.</p>
${p.kind === 'user' ? html`${stepUpNote('/console/tokens')}${tokenCreateForm(p.roles ?? [], identity.settings.tokenMaxDays)}` : ''}
<h2>Your tokens</h2>
${tokensTable(
  'Your API tokens',
  own.map((t) => ({ ...t, current: t.id === current })),
  true,
  'You have no API tokens.',
)}
${everyone ? html`<h2>Every token</h2>${tokensTable('Every API token', everyone, true, 'Nobody has an API token.')}` : ''}`,
    );
  });
  route('POST', '/console/tokens', { permission: 'self', stepUp: true, audit: 'token.create' }, async (request, reply) => {
    const p = kit.who(request);
    const f = form(request);
    const scopes = bindings(f.scopes);
    const body = parseRequest(CreateTokenRequest, { name: f.name ?? '', expiresInDays: num(f.expiresInDays) ?? '', ...(scopes.length ? { scopes } : {}) });
    // As `POST /v1/tokens`: a person's own token, carrying at most the roles of this credential.
    if (p.kind !== 'user')
      throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'only people create their own tokens; service account tokens come from the security team', {
        permission: 'self',
      });
    const token = await identity.tokens.create({ kind: 'user', id: p.id, name: p.actor.replace(/^user:/, ''), roles: p.roles ?? [] }, body);
    request.auditTarget = `token:${token.id}`;
    return once(reply, {
      show: {
        title: `Token ${token.name} created`,
        note: `Copy it now: it is shown once and not kept anywhere. It carries ${token.scopes.join(', ')} until ${token.expiresAt}.`,
        items: [{ label: 'API token', text: token.token }],
      },
    });
  });
  route('POST', '/console/tokens/:id/revoke', { permission: 'self', audit: 'token.revoke' }, async (request, reply) => {
    const { id } = parseRequest(IdParam, request.params, 'path');
    expectNoFields(request.body);
    // The service decides: the owner, or whoever holds users.manage; anyone else's token is "not found".
    await identity.tokens.revoke(id, kit.who(request));
    return done(reply, '/console/tokens', 'token-revoked');
  });

  // ---- Service accounts: the security team creates them, issues their tokens and names their owner.
  route('GET', '/console/service-accounts', { permission: 'users.manage' }, async (request, reply) => {
    const [accounts, tokens] = await Promise.all([identity.serviceAccounts.list(), identity.tokens.list('all')]);
    return kit.send(
      request,
      reply,
      'Service accounts',
      html`${queryDone(request)}${stepUpNote('/console/service-accounts')}
<p class="muted">Service accounts have roles but no password and no second factor: they act only through API tokens, and can never pass a step-up.</p>
${serviceAccountsTable(accounts, tokens)}`,
    );
  });
  const access = kit.access;
  if (access) {
    route('POST', '/console/service-accounts', { permission: 'users.manage', stepUp: true, audit: 'service_account.create' }, async (request, reply) => {
      const f = form(request);
      const body = parseRequest(CreateServiceAccountRequest, { name: f.name ?? '', roles: bindings(f.roles) });
      // As `POST /v1/service-accounts`: nobody grants a role they do not hold.
      access.assertGrantable(kit.who(request), access.bindings(body.roles));
      const created = await identity.serviceAccounts.create(body.name, body.roles, kit.who(request).actor);
      request.auditTarget = `service_account:${created.id}`;
      return done(reply, '/console/service-accounts', 'service-account-created');
    });
    route(
      'POST',
      '/console/service-accounts/:id/tokens',
      { permission: 'users.manage', stepUp: true, audit: 'service_account.token' },
      async (request, reply) => {
        const account = await identity.serviceAccounts.find(parseRequest(IdParam, request.params, 'path').id);
        const f = form(request);
        const body = parseRequest(CreateTokenRequest, { name: f.name ?? '', expiresInDays: num(f.expiresInDays) ?? '' });
        // As `POST /v1/service-accounts/:id/tokens`: the issuer must hold the roles the token hands out.
        access.assertGrantable(kit.who(request), access.bindings(account.roles));
        const token = await identity.tokens.create({ kind: 'service', id: account.id, name: account.name, roles: account.roles }, body);
        request.auditTarget = `token:${token.id}`;
        return once(reply, {
          show: {
            title: `Token ${token.name} for ${account.name}`,
            note: `Copy it now into the automation's secret store: it is shown once and not kept anywhere. It carries ${token.scopes.join(', ')} until ${token.expiresAt}.`,
            items: [{ label: 'API token', text: token.token }],
          },
        });
      },
    );
  }
  route(
    'POST',
    '/console/service-accounts/:id/owner',
    { permission: 'users.manage', stepUp: true, audit: 'service_account.owner', auditedByRoute: 'success' },
    async (request, reply) => {
      const { id } = parseRequest(OwnerParam, request.params, 'path');
      const f = form(request);
      const { user } = parseRequest(z.strictObject({ user: MemberRef.shape.name }), { user: (f.user ?? '').trim() });
      await ownership.setServiceAccountOwner(context(request), id, user);
      return done(reply, '/console/service-accounts', 'service-account-owner');
    },
  );

  route('POST', '/console/service-accounts/:id/disable', { permission: 'users.manage', audit: 'service_account.disable' }, async (request, reply) => {
    const { id } = parseRequest(IdParam, request.params, 'path');
    expectNoFields(request.body);
    const disabled = await identity.serviceAccounts.disable(id);
    request.auditTarget = `service_account:${disabled.id}`;
    return done(reply, '/console/service-accounts', 'service-account-disabled');
  });

  // ---- Teams and bot names: keys.read to read, keys.manage with step-up to change (as the API).
  route('GET', '/console/teams', { permission: 'keys.read' }, async (request, reply) => {
    const teams = await ownership.listTeams();
    const manage = can(kit.who(request), 'keys.manage');
    return kit.send(
      request,
      reply,
      'Teams',
      html`${queryDone(request)}${manage ? stepUpNote('/console/teams') : ''}
<p class="muted">A team's members (people and service accounts) hold the publisher keys that may publish the team's bot names.</p>
${teamsTable(teams, manage)}`,
    );
  });
  route('POST', '/console/teams', { permission: 'keys.manage', stepUp: true, audit: 'team.create' }, async (request, reply) => {
    const { name } = parseRequest(z.strictObject({ name: TeamName }), { name: (form(request).name ?? '').trim() });
    await ownership.createTeam(context(request), name);
    request.auditTarget = `team:${name}`;
    return done(reply, '/console/teams', 'team-created');
  });
  route('POST', '/console/teams/:team/members', { permission: 'keys.manage', stepUp: true, audit: 'team.member_add' }, async (request, reply) => {
    const { team } = parseRequest(TeamParam, request.params, 'path');
    const f = form(request);
    const member = parseRequest(MemberRef, { kind: f.kind ?? '', name: (f.name ?? '').trim() });
    await ownership.addMember(context(request), team, member);
    request.auditDetails = { member: `${member.kind}:${member.name}` };
    return done(reply, '/console/teams', 'member-added');
  });
  route(
    'POST',
    '/console/teams/:team/members/:kind/:name/remove',
    { permission: 'keys.manage', stepUp: true, audit: 'team.member_remove' },
    async (request, reply) => {
      const { team, kind, name } = parseRequest(MemberParams, request.params, 'path');
      expectNoFields(request.body);
      await ownership.removeMember(team, { kind, name });
      return done(reply, '/console/teams', 'member-removed');
    },
  );
  // The service audits a transfer as `bot.transfer` with both teams; refusals are the request audit's.
  route(
    'POST',
    '/console/bots/:name/transfer',
    { permission: 'keys.manage', stepUp: true, audit: 'bot.transfer', auditedByRoute: 'success' },
    async (request, reply) => {
      const f = form(request);
      const params = request.params as { name?: string };
      // `/console/bots/-/transfer` names the bot in the form (the free-text form on the teams page).
      const { name } = parseRequest(BotParam, { name: params.name === '-' ? (f.bot ?? '').trim() : params.name }, 'path');
      request.auditTarget = name;
      const { team } = parseRequest(z.strictObject({ team: TeamName }), { team: f.team ?? '' });
      await ownership.transfer(context(request), name, team);
      return done(reply, '/console/teams', 'transferred');
    },
  );
}
