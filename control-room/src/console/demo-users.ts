/**
 * `make up` only: creates the demo operator and the demo security user through the HTTP API with
 * the bootstrap admin token, enrols their TOTP the way a person would, and prints how to sign in
 * to the console. Their passwords and TOTP secrets are synthetic, stored mode 0600 next to the
 * demo's data (loopback stack, never a production one), so a second `make up` prints them again.
 *
 *   node control-room/dist/console/demo-users.js <control-room-url> <admin-token-file> <state-file>
 *   node control-room/dist/console/demo-users.js --code <state-file> <username>   # a current code
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { base32Decode, totpAt, totpStep } from '../identity/totp';

interface DemoUser {
  username: string;
  role: string;
  password: string;
  totpSecret: string;
}

async function call(url: string, method: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
}

async function enrol(url: string, adminToken: string, username: string, role: string): Promise<DemoUser> {
  const created = await call(url, 'POST', '/v1/users', { username, roles: [role] }, adminToken);
  if (created.status !== 201) throw new Error(`creating ${username} failed: ${JSON.stringify(created.body)}`);
  const enrolmentSecret = String(created.body.enrolmentSecret);
  const started = await call(url, 'POST', '/v1/enrolment', { username, enrolmentSecret });
  const totpSecret = String(started.body.secret);
  const password = `demo-${randomBytes(12).toString('base64url')}`;
  // The previous step's code: the sign-in that follows uses the current one (a step is accepted once).
  const code = totpAt(base32Decode(totpSecret), (totpStep(Date.now()) - 1) * 30_000);
  const confirmed = await call(url, 'POST', '/v1/enrolment/confirm', { username, enrolmentSecret, password, code });
  if (confirmed.status !== 200) throw new Error(`enrolling ${username} failed: ${JSON.stringify(confirmed.body)}`);
  return { username, role, password, totpSecret };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--code') {
    const users = JSON.parse(readFileSync(argv[1]!, 'utf8')) as DemoUser[];
    const user = users.find((u) => u.username === argv[2]);
    if (!user) throw new Error(`no demo user ${argv[2]}`);
    process.stdout.write(`${totpAt(base32Decode(user.totpSecret), Date.now())}\n`);
    return;
  }
  const [url, tokenFile, stateFile] = argv;
  if (!url || !tokenFile || !stateFile) throw new Error('usage: demo-users <url> <admin-token-file> <state-file>');
  let users: DemoUser[];
  if (existsSync(stateFile)) users = JSON.parse(readFileSync(stateFile, 'utf8')) as DemoUser[];
  else {
    const adminToken = readFileSync(tokenFile, 'utf8').trim();
    users = [await enrol(url, adminToken, 'demo-operator', 'operator'), await enrol(url, adminToken, 'demo-security', 'security')];
    writeFileSync(stateFile, JSON.stringify(users, null, 2), { mode: 0o600 });
  }
  const lines = [`console: ${url}/console`];
  for (const u of users) {
    lines.push(
      `  ${u.role}: username ${u.username}  password ${u.password}  TOTP secret ${u.totpSecret} (add it to an authenticator app, or get the current code with: node control-room/dist/console/demo-users.js --code ${stateFile} ${u.username})`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`demo users: ${err.message}\n`);
  process.exit(1);
});
