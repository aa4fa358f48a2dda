import type { Permission, Principal } from '../access/permissions';
import { can } from '../access/permissions';
import { Html, html } from './html';

/**
 * The console's navigation, one entry per page with the permission its route requires: a role
 * sees exactly the pages the role table lets it open (the routes refuse the rest anyway).
 */
export const NAV: readonly { path: string; label: string; permission: Permission }[] = [
  { path: '/console', label: 'Overview', permission: 'self' },
  { path: '/console/runs', label: 'Runs', permission: 'runs.read' },
  { path: '/console/dead-letters', label: 'Dead letters', permission: 'dlq.read' },
  { path: '/console/schedules', label: 'Schedules', permission: 'runs.read' },
  { path: '/console/bots', label: 'Bots', permission: 'packages.read' },
  { path: '/console/credentials', label: 'Credentials', permission: 'credentials.read' },
  { path: '/console/runners', label: 'Runners', permission: 'runners.manage' },
  { path: '/console/people', label: 'People', permission: 'users.manage' },
  { path: '/console/service-accounts', label: 'Service accounts', permission: 'users.manage' },
  { path: '/console/keys', label: 'Publisher keys', permission: 'keys.read' },
  { path: '/console/teams', label: 'Teams', permission: 'keys.read' },
  { path: '/console/tokens', label: 'API tokens', permission: 'self' },
  { path: '/console/audit', label: 'Audit', permission: 'audit.read' },
];

export interface PageContext {
  principal: Principal | undefined;
  csrfToken: string | undefined;
  idleMinutes: number;
  path: string;
  /** The response's CSP nonce: the console's own script carries it. */
  nonce: string;
}

/** The page shell: no inline script or style (CSP `'self'` only), the CSRF token in a meta tag for console.js. */
export function page(ctx: PageContext, title: string, body: Html): string {
  const p = ctx.principal;
  const nav = p ? NAV.filter((n) => can(p, n.permission)) : [];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${ctx.csrfToken ? html`<meta name="orderly-csrf" content="${ctx.csrfToken}">` : ''}
${p ? html`<meta name="orderly-idle-minutes" content="${ctx.idleMinutes}">` : ''}
<title>${title} · Orderly</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" nonce="${ctx.nonce}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">Orderly control room</span>
  ${
    p
      ? html`<nav aria-label="Main"><ul>${nav.map((n) => html`<li><a href="${n.path}"${n.path === ctx.path ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}</ul></nav>
  <form method="post" action="/console/logout" class="logout"><span class="who">${p.actor} (${(p.roles ?? []).join(', ')})</span> <button type="submit">Sign out</button></form>`
      : ''
  }
</header>
<div id="idle-warning" class="banner warn" role="alert" hidden>You will be signed out soon for inactivity. Move on to another page or reload to stay signed in.</div>
<div id="flash" class="banner" role="status" aria-live="polite" hidden></div>
<section id="shown" class="banner shown" aria-live="polite" hidden></section>
<main id="main">
<h1>${title}</h1>
${body}
</main>
</body>
</html>`.value;
}

/** A table, or the designed empty state when there are no rows. */
export function table(caption: string, headers: readonly string[], rows: readonly Html[], empty: string): Html {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table><caption>${caption}</caption><thead><tr>${headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`;
}
