import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { findMember } from './members';

export interface DemoPortal {
  url: string;
  /** Side effects the portal saw, for tests that must prove "exactly once". */
  stats(): {
    eligibilityChecks: number;
    byIdempotencyKey: Record<string, number>;
    logins: number;
    failedLogins: number;
    /** Claim form submissions by `<idempotency key>/<step>`: a retry that repeats one shows as 2. */
    claimSubmissions: Record<string, number>;
  };
  close(): Promise<void>;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:40em}label{display:block;margin:.5em 0}input{margin-left:.5em}</style>
</head><body><h1>Demo Payer Portal</h1><p><em>Synthetic data only.</em></p>${body}</body></html>`;
}

const FORM = page(
  'Eligibility check',
  `<form method="post" action="/eligibility">
<label>Member ID <input id="member-id" name="memberId" autocomplete="off" required></label>
<label>Date of birth <input id="dob" name="dateOfBirth" placeholder="YYYY-MM-DD" required></label>
<input type="hidden" id="idempotency-key" name="idempotencyKey">
<button id="check" type="submit">Check eligibility</button>
</form>`,
);

const CLAIM_FORM = page(
  'Submit a claim',
  `<form method="post" action="/claims">
<label>Amount (cents) <input id="amount" name="amount" autocomplete="off" required></label>
<input type="hidden" id="idempotency-key" name="idempotencyKey">
<input type="hidden" id="step" name="step">
<button id="submit-claim" type="submit">Submit claim</button>
</form>`,
);

const LOGIN = page(
  'Sign in',
  `<form method="post" action="/login">
<label>Username <input id="username" name="username" autocomplete="off" required></label>
<label>Password <input id="password" name="password" type="password" required></label>
<button id="login" type="submit">Sign in</button>
</form>`,
);

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

/**
 * Starts the demo portal on loopback. Given credentials, it requires a sign-in first (as a real
 * payer portal does), so the demo bot needs the credentials it leases from Vault.
 */
export function startDemoPortal(options: { port?: number; host?: string; credentials?: { username: string; password: string } } = {}): Promise<DemoPortal> {
  let eligibilityChecks = 0;
  let logins = 0;
  let failedLogins = 0;
  const byIdempotencyKey: Record<string, number> = {};
  const claimSubmissions: Record<string, number> = {};
  let claimSeq = 0;
  const sessions = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, html: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
      res.end(html);
    };
    const path = (req.url ?? '/').split('?')[0];
    const session = /(?:^|;\s*)portal_session=([a-f0-9]{32})/.exec(req.headers.cookie ?? '')?.[1];
    const signedIn = !options.credentials || (session !== undefined && sessions.has(session));
    if (req.method === 'GET' && path === '/login') return send(200, LOGIN);
    if (req.method === 'POST' && path === '/login') {
      readForm(req).then(
        (form) => {
          const creds = options.credentials;
          if (creds && sameText(form.get('username') ?? '', creds.username) && sameText(form.get('password') ?? '', creds.password)) {
            logins++;
            const id = randomBytes(16).toString('hex');
            sessions.add(id);
            return send(303, '', { location: '/eligibility', 'set-cookie': `portal_session=${id}; HttpOnly; SameSite=Strict; Path=/` });
          }
          failedLogins++;
          send(401, page('Sign in', '<p id="login-failed">Wrong username or password.</p>'));
        },
        () => send(413, page('Error', '<p>Bad request</p>')),
      );
      return;
    }
    if (!signedIn) return send(303, '', { location: '/login' });
    if (req.method === 'GET' && (path === '/' || path === '/eligibility')) return send(200, FORM);
    if (req.method === 'POST' && path === '/eligibility') {
      readForm(req).then(
        (form) => {
          eligibilityChecks++;
          const key = form.get('idempotencyKey');
          if (key) byIdempotencyKey[key] = (byIdempotencyKey[key] ?? 0) + 1;
          const member = findMember(form.get('memberId') ?? '', form.get('dateOfBirth') ?? '');
          if (!member) return send(200, page('Eligibility result', '<p id="not-found">No member matches this member ID and date of birth.</p>'));
          send(
            200,
            page(
              'Eligibility result',
              `<dl><dt>Coverage</dt><dd id="coverage-status">${member.coverage}</dd><dt>Plan</dt><dd id="plan">${escape(member.plan)}</dd></dl>`,
            ),
          );
        },
        () => send(413, page('Error', '<p>Bad request</p>')),
      );
      return;
    }
    if (req.method === 'GET' && path === '/claims') return send(200, CLAIM_FORM);
    if (req.method === 'POST' && path === '/claims') {
      readForm(req).then(
        (form) => {
          // Every submission is a side effect, recorded whatever its content: the test of
          // "exactly once" counts them by idempotency key and step.
          const key = `${form.get('idempotencyKey') ?? ''}/${form.get('step') ?? ''}`;
          claimSubmissions[key] = (claimSubmissions[key] ?? 0) + 1;
          const ref = `CLM-${String(++claimSeq).padStart(6, '0')}`;
          send(200, page('Claim received', `<p>Claim received: <span id="claim-ref">${ref}</span></p>`));
        },
        () => send(413, page('Error', '<p>Bad request</p>')),
      );
      return;
    }
    send(404, page('Not found', '<p>Not found</p>'));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        stats: () => ({ eligibilityChecks, byIdempotencyKey: { ...byIdempotencyKey }, logins, failedLogins, claimSubmissions: { ...claimSubmissions } }),
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
