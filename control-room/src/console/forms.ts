import type { CredentialStatusView } from '@orderly/shared';
import type { AccessRequestView } from '../access/requests';
import type { RunnerIdentityView, UserView } from '../identity/schemas';
import type { PermissionDiffView } from '@orderly/shared';
import { consolePath, Html, html, time } from './html';
import { table } from './layout';

/**
 * The console's forms: markup only. Every form posts through console.js (which adds the CSRF
 * header); what a form changes is decided by the route in `actions.ts` and the service behind
 * it. A form is rendered only for a role that may use it (the caller passes that decision).
 */

/** Outcomes a redirect may name (`?done=`): only these texts are ever shown, never the parameter. */
const DONE: Readonly<Record<string, string>> = {
  paused: 'Schedule paused.',
  resumed: 'Schedule resumed.',
  deleted: 'Schedule deleted.',
  created: 'Schedule created.',
  promoted: 'Promoted to prod: the release attestation is signed.',
  rotated: 'Credential rotated: the new version is in Vault.',
  set: 'Credential set.',
  'runs-revoked': "The Vault tokens of the bot's active runs are revoked.",
  'runner-revoked': 'Runner identity revoked: its next request is refused.',
  'key-revoked': 'Publisher key revoked: packages signed only by it no longer run.',
  'bootstrap-revoked': "The segment's bootstrap runner token and key are revoked, for good.",
  disabled: 'Person disabled: their sessions and tokens end now.',
  unlocked: 'Sign-in lock cleared.',
  roles: 'Roles changed.',
  'roles-requested': 'The change waits for a second security person to approve it.',
  approved: 'Access request approved and applied.',
  rejected: 'Access request rejected.',
  'token-revoked': 'Token revoked: it stops working at once.',
  'service-account-created': 'Service account created: issue it a token below.',
  'service-account-owner': "Owner set: the account's uploads and keys count as theirs for separation of duties.",
  'service-account-disabled': 'Service account disabled: its tokens stop working at once.',
  'team-created': 'Team created.',
  'member-added': 'Member added.',
  'member-removed': 'Member removed.',
  transferred: 'Bot name transferred: audited as bot.transfer with both teams.',
  'stepped-up': 'Second factor confirmed: changes that need it are open for 5 minutes.',
};

export function doneBanner(done: string | undefined): Html {
  const text = done === undefined ? undefined : DONE[done];
  return text ? html`<p class="banner ok" role="status">${text}</p>` : html``;
}

/** Where a change that needs a fresh second factor sends the person first. */
export function stepUpNote(next: string): Html {
  return html`<p class="muted">Changes here need a fresh second factor (a sign-in or step-up in the last 5 minutes). <a href="${consolePath('/console/step-up', { next })}">Step up now</a>.</p>`;
}

export function stepUpForm(next: string): Html {
  return html`<form method="post" action="/console/step-up" class="login">
<input type="hidden" name="next" value="${next}">
<label for="code">Authenticator code <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="32"></label>
<button type="submit">Confirm</button>
</form>`;
}

/** The reveal form of a run's input and result: a reason, then the answer appears in the page only. */
export function revealForm(runId: string): Html {
  return html`<form method="post" action="/console/runs/${runId}/reveal" class="filters" aria-label="Reveal input and result">
<label>Reason for reading this run's input and result (audited) <input name="reason" required minlength="3" maxlength="200" size="40" autocomplete="off"></label>
<button type="submit">Reveal input and result</button></form>`;
}

/** Runs page: cancel every waiting or active run the filter matches, after a preview of the count. */
export function bulkCancelForm(filter: Record<string, string | undefined>, max: number): Html {
  const hidden = Object.entries(filter).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v ?? ''}">`);
  return html`<form method="post" action="/console/runs/cancel" class="filters" aria-label="Cancel by filter">${hidden}
<label>Reason for cancelling all matching <input name="reason" maxlength="200" size="40" autocomplete="off"></label>
<button type="submit" name="intent" value="preview">Preview cancel count</button>
<button type="submit" name="intent" value="cancel" class="danger" data-confirm="Cancel every waiting or active run matching this filter (up to ${max})?">Cancel all matching</button>
</form>`;
}

export function scheduleCreateForm(segments: readonly string[]): Html {
  return html`<h2>New schedule</h2>
<form method="post" action="/console/schedules" class="filters" aria-label="New schedule">
<label>Name <input name="name" required maxlength="200" autocomplete="off"></label>
<label>Bot <input name="bot" required maxlength="100" autocomplete="off"></label>
<label>Version (empty: the latest) <input name="version" maxlength="100" autocomplete="off"></label>
<label>Segment <select name="segment">${segments.map((s) => html`<option>${s}</option>`)}</select></label>
<label>Cron (5 or 6 fields) <input name="cron" maxlength="200" autocomplete="off"></label>
<label>Cron time zone (IANA, empty: UTC) <input name="timeZone" maxlength="64" autocomplete="off"></label>
<label>Or every N seconds <input name="everySeconds" inputmode="numeric" maxlength="9" autocomplete="off"></label>
<label>Business calendar (empty: none) <input name="calendar" maxlength="64" autocomplete="off"></label>
<label>On a non-working day <select name="calendarPolicy"><option value="">skip (default)</option><option value="skip">skip</option><option value="next_working_day">next working day</option></select></label>
<label>If the last run is still going <select name="overlap"><option value="">allow (default)</option><option value="allow">allow</option><option value="skip">skip</option><option value="queue_one">queue one</option></select></label>
<label>After missed fires <select name="misfire"><option value="">run once (default)</option><option value="run_once">run once</option><option value="skip">skip</option></select></label>
<label>Input (a JSON object; never shown again) <textarea name="input" rows="2" cols="40" autocomplete="off" spellcheck="false"></textarea></label>
<button type="submit">Create schedule</button>
</form>`;
}

/** The approver's review: what the version adds to the one in prod, acknowledged before promotion. */
export function promoteForm(diff: PermissionDiffView): Html {
  const added = diff.added as Record<string, unknown[]>;
  const rows = Object.entries(added).map(
    ([kind, items]) =>
      html`<tr><th scope="row">${kind}</th><td>${items.length ? items.map((i) => html`<code>${typeof i === 'string' ? i : JSON.stringify(i)}</code> `) : html`<span class="muted">nothing added</span>`}</td></tr>`,
  );
  return html`<p>${diff.name} ${diff.version} (<code>${diff.digest}</code>) compared with ${diff.against ? html`${diff.against.version} in prod` : 'nothing (no version is in prod yet: everything it declares is added)'}.</p>
<table><caption>Permissions this version adds</caption><thead><tr><th scope="col">Kind</th><th scope="col">Added</th></tr></thead><tbody>${rows}</tbody></table>
<form method="post" action="/console/bots/${diff.name}/${diff.version}/promote" class="login" aria-label="Promote">
<input type="hidden" name="acknowledgePermissions" value="${diff.diffDigest}">
${diff.widens ? html`<label class="check"><span><input type="checkbox" name="acknowledge" value="yes" required> I have read the permissions this version adds (diff <code>${diff.diffDigest.slice(0, 12)}</code>)</span></label>` : html`<p class="muted">This version adds no permission.</p>`}
<label>Change ticket <input name="ticket" maxlength="64" autocomplete="off"></label>
<label>Release expires after (days) <input name="expiresInDays" inputmode="numeric" value="90" maxlength="3"></label>
<button type="submit">Promote to prod</button>
</form>`;
}

/** Credentials: status per declared credential; rotate (or set) with a value typed once, revoke the bot's runs. */
export function credentialsTable(list: readonly CredentialStatusView[], manage: boolean): Html {
  const bots = [...new Set(list.map((c) => c.bot))];
  const valueField = (id: string) =>
    html`<label for="${id}">New value <input id="${id}" name="value" type="password" autocomplete="off" required minlength="8" maxlength="8192"></label>`;
  return html`${table(
    'Bot credentials',
    ['Bot', 'Credential', 'In Vault', 'Version', 'Age', 'Max age', 'Rotation', 'Last rotated by', ...(manage ? ['Actions'] : [])],
    list.map((c) => {
      const id = `value-${c.bot}-${c.name}`;
      return html`<tr><td>${c.bot}</td><td>${c.name}</td><td>${c.exists ? 'yes' : 'not set'}</td><td>${c.version ?? '—'}</td><td>${c.ageDays === null ? '—' : `${c.ageDays} d`}</td><td>${c.maxAgeDays} d</td>
<td>${c.overdue ? html`<strong class="overdue">overdue</strong>` : c.exists ? 'in time' : '—'}</td><td>${c.rotatedBy ?? '—'} ${time(c.rotatedAt)}</td>
${
  manage
    ? html`<td>${
        c.exists
          ? html`<form method="post" action="/console/credentials/${c.bot}/${c.name}/rotate" class="inline" autocomplete="off"><input type="hidden" name="expectedVersion" value="${c.version ?? ''}">${valueField(id)} <button type="submit">Rotate</button></form>`
          : html`<form method="post" action="/console/credentials/${c.bot}/${c.name}/set" class="inline" autocomplete="off">${valueField(id)} <button type="submit">Set</button></form>`
      }</td>`
    : ''
}</tr>`;
    }),
    'No published bot declares a credential.',
  )}
${manage && bots.length ? html`<h2>Revoke the Vault tokens of a bot's active runs</h2>${bots.map((b) => html`<form method="post" action="/console/credentials/${b}/revoke-runs" class="inline" data-confirm="Revoke the Vault tokens of every active run of ${b}?"><button type="submit" class="danger">Revoke runs of ${b}</button></form> `)}` : ''}`;
}

export function runnersTable(runners: readonly RunnerIdentityView[], segments: readonly string[], bootstrapRevoked: ReadonlySet<string> = new Set()): Html {
  return html`${table(
    'Runner identities',
    ['Name', 'Segment', 'Registered', 'Last seen', 'State', 'Actions'],
    runners.map(
      (r) => html`<tr><td>${r.name}</td><td>${r.segment}</td><td>${time(r.createdAt)}</td><td>${time(r.lastUsedAt)}</td>
<td>${r.revoked ? 'revoked' : r.pending ? 'waiting for approval' : 'active'}</td>
<td>${r.revoked ? '' : html`<form method="post" action="/console/runners/${r.id}/revoke" class="inline" data-confirm="Revoke runner ${r.name}? Its next request is refused."><button type="submit" class="danger">Revoke</button></form>`}</td></tr>`,
    ),
    'No runner identities; runners use the bootstrap segment tokens.',
  )}
<h2>Bootstrap runner tokens</h2>
<p class="muted">Each segment starts with a bootstrap runner token and key (files on the control room's host). Once its runners have their own identities, revoke it (step-up); it cannot be restored.</p>
${table(
  'Bootstrap runner tokens',
  ['Segment', 'State', 'Actions'],
  segments.map(
    (s) => html`<tr><td>${s}</td><td>${bootstrapRevoked.has(s) ? 'revoked' : 'active'}</td>
<td>${bootstrapRevoked.has(s) ? '' : html`<form method="post" action="/console/runners/bootstrap/${s}/revoke" class="inline" data-confirm="Revoke the bootstrap runner token of ${s}? Runners still using it stop."><button type="submit" class="danger">Revoke bootstrap token of ${s}</button></form>`}</td></tr>`,
  ),
  'No segments.',
)}
<h2>Register a runner</h2>
<form method="post" action="/console/runners" class="filters" aria-label="Register a runner">
<label>Name <input name="name" required maxlength="100" autocomplete="off"></label>
<label>Segment <select name="segment">${segments.map((s) => html`<option>${s}</option>`)}</select></label>
<label>Report-signing public key (PEM, made on the runner by <code>orderly runner keygen</code>; required) <textarea name="publicKey" rows="2" cols="40" spellcheck="false" required></textarea></label>
<button type="submit">Register runner</button>
</form>`;
}

export function peopleTables(users: readonly UserView[], requests: readonly AccessRequestView[], self: string): Html {
  const roleForm = (u: UserView) =>
    html`<form method="post" action="/console/people/${u.id}/roles" class="inline"><label>Roles <input name="roles" value="${u.roles.join(' ')}" size="24" maxlength="400" autocomplete="off"></label> <button type="submit">Set roles</button></form>`;
  return html`${table(
    'People',
    ['Username', 'Roles', 'Enrolled', 'State', 'Actions'],
    users.map(
      (u) => html`<tr><td>${u.username}</td><td>${u.roles.join(', ')}</td><td>${u.enrolled ? 'yes' : 'not yet'}</td>
<td>${u.disabled ? 'disabled' : u.lockedUntil ? html`locked until ${time(u.lockedUntil)}` : 'active'}</td>
<td>${
        u.disabled || `user:${u.username}` === self
          ? ''
          : html`${roleForm(u)}
<form method="post" action="/console/people/${u.id}/disable" class="inline" data-confirm="Disable ${u.username}? Their sessions and tokens end now."><button type="submit" class="danger">Disable</button></form>`
      }
${u.lockedUntil ? html`<form method="post" action="/console/people/${u.id}/unlock" class="inline"><button type="submit">Unlock</button></form>` : ''}</td></tr>`,
    ),
    'No people yet.',
  )}
<h2>Access requests waiting for a second person</h2>
${table(
  'Pending access requests',
  ['Kind', 'Target', 'Roles before', 'Roles after', 'Segment', 'Requested by', 'Requested', 'Actions'],
  requests.map(
    (
      r,
    ) => html`<tr><td>${r.kind}</td><td>${r.target}</td><td>${r.rolesBefore.join(', ')}</td><td>${r.rolesAfter.join(', ')}</td><td>${r.segment ?? '—'}</td><td>${r.requestedBy}</td><td>${time(r.createdAt)}</td>
<td>${
      r.requestedBy === self
        ? html`<span class="muted">yours: another person decides</span>`
        : html`<form method="post" action="/console/access-requests/${r.id}/approve" class="inline"><button type="submit">Approve</button></form>
<form method="post" action="/console/access-requests/${r.id}/reject" class="inline"><button type="submit" class="danger">Reject</button></form>`
    }</td></tr>`,
  ),
  'No access request is waiting.',
)}
<h2>Add a person</h2>
<form method="post" action="/console/people" class="filters" aria-label="Add a person">
<label>Username <input name="username" required maxlength="64" autocomplete="off"></label>
<label>Roles (space-separated, e.g. operator@dev auditor) <input name="roles" required maxlength="400" size="30" autocomplete="off"></label>
<button type="submit">Add person</button>
</form>`;
}

/** A one-time answer (an enrolment secret, a runner token): shown by console.js in the page, never in a URL. */
export interface ShownOnce {
  show: { title: string; note?: string; items: ({ label: string; text: string } | { label: string; image: string })[] };
}
