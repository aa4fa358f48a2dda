import { Command } from 'commander';
import { CreatedUserView, EnrolmentView, RecoveryCodesView, SetRolesView, UserList, UserView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { collect, readSecret } from './login';

const userPath = (user: string) => `/v1/users/${encodeURIComponent(user)}`;
const line = (u: UserView) =>
  [
    u.username,
    u.roles.join(',') || '-',
    u.enrolled ? 'enrolled' : 'not enrolled',
    u.disabled ? 'disabled' : u.lockedUntil ? `locked until ${u.lockedUntil}` : 'active',
  ].join('  ');

/** `orderly users`: people and their roles (the security team), and enrolment (each person). */
export function usersCommand(client: () => ApiClient): Command {
  const users = new Command('users').description('people: create, list, roles, disable, unlock; enrol your own second factor');
  users
    .command('create')
    .description('create a person with roles; prints a one-time enrolment secret to hand over out of band')
    .argument('<username>', 'unique username')
    .requiredOption('--role <role>', 'developer, approver, operator, security or auditor, or developer@SEGMENT / operator@SEGMENT (repeat for more)', collect)
    .option('--json', 'machine-readable output')
    .action(async (username: string, opts: { role: string[]; json?: boolean }) => {
      const created = await client().request('POST', '/v1/users', CreatedUserView, { username, roles: opts.role });
      output(opts.json, created, [
        `created ${created.user.username} (${created.user.roles.join(', ')})`,
        `enrolment secret (shown once, valid until ${created.enrolmentExpiresAt}): ${created.enrolmentSecret}`,
        `they run: orderly users enrol ${created.user.username}`,
        ...(created.request
          ? [`pending: ${created.request.rolesAfter.join(', ')} waits for a second security person (orderly access approve ${created.request.id})`]
          : []),
      ]);
    });
  users
    .command('enrol')
    .description(
      'enrol your second factor: enrolment secret, then an otpauth URI for your authenticator app, a code and a new password; prints recovery codes once',
    )
    .argument('<username>', 'your username')
    .option('--json', 'machine-readable output')
    .action(async (username: string, opts: { json?: boolean }) => {
      const enrolmentSecret = await readSecret('enrolment secret (not echoed): ');
      const started = await client().request('POST', '/v1/enrolment', EnrolmentView, { username, enrolmentSecret });
      process.stderr.write(`add this to your authenticator app (or render it as a QR code):\n${started.otpauthUri}\n`);
      const code = await readSecret('code from the app: ');
      const password = await readSecret('new password, at least 12 characters (not echoed): ');
      const { recoveryCodes } = await client().request('POST', '/v1/enrolment/confirm', RecoveryCodesView, { username, enrolmentSecret, password, code });
      output(opts.json, { recoveryCodes }, ['enrolled. Recovery codes (each works once; store them offline, they are not shown again):', ...recoveryCodes]);
    });
  users
    .command('ls')
    .description('list people, their roles and state')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { users: list } = await client().request('GET', '/v1/users', UserList);
      output(opts.json, list, list.length ? list.map(line) : ['no users']);
    });
  users
    .command('roles')
    .description("replace a person's roles (needs a fresh TOTP code: prompted for)")
    .argument('<user>', 'username or id')
    .option('--role <role>', 'a role to hold (repeat; none removes every role)', collect, [])
    .option('--json', 'machine-readable output')
    .action(async (user: string, opts: { role: string[]; json?: boolean }) => {
      const changed = await client().request('PUT', `${userPath(user)}/roles`, SetRolesView, { roles: opts.role });
      output(
        opts.json,
        changed,
        changed.request
          ? [
              line(changed.user),
              `pending: ${changed.request.rolesAfter.join(', ')} waits for a second security person (orderly access approve ${changed.request.id})`,
            ]
          : line(changed.user),
      );
    });
  users
    .command('disable')
    .description('disable a person: their sessions end and their tokens stop working at once')
    .argument('<user>', 'username or id')
    .option('--json', 'machine-readable output')
    .action(async (user: string, opts: { json?: boolean }) => {
      const updated = await client().request('POST', `${userPath(user)}/disable`, UserView, {});
      output(opts.json, updated, line(updated));
    });
  users
    .command('unlock')
    .description('clear the lockout after failed sign-ins')
    .argument('<user>', 'username or id')
    .option('--json', 'machine-readable output')
    .action(async (user: string, opts: { json?: boolean }) => {
      const updated = await client().request('POST', `${userPath(user)}/unlock`, UserView, {});
      output(opts.json, updated, line(updated));
    });
  return users;
}
