import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { generateSigningKeyPair, OrderlyError } from '@orderly/shared';
import { BootstrapRunnerRevocationView, RegisteredRunnerView, RunnerIdentityList, RunnerIdentityView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { saveToken } from './login';

/** Where the runner looks for its key by default (runner/src/config.ts): beside the token, `.token` -> `.key`. */
const defaultSigningKeyFile = (tokenFile: string) => (tokenFile.endsWith('.token') ? `${tokenFile.slice(0, -'.token'.length)}.key` : `${tokenFile}.key`);

const line = (r: RunnerIdentityView) =>
  [r.id, r.name, r.segment, r.revoked ? 'revoked' : 'live', r.lastUsedAt ? `last seen ${r.lastUsedAt}` : 'never seen'].join('  ');

/** `orderly runners`: one identity per runner, bound to one segment. */
export function runnersCommand(client: () => ApiClient): Command {
  const runners = new Command('runners').description('runner identities: register (token shown once), list, revoke');
  runners
    .command('register')
    .description('register one runner of one segment with its report-signing key; its token goes to --out (0600) or is printed once')
    .argument('<name>', 'unique runner name')
    .requiredOption('--segment <segment>', 'the one segment it serves')
    .option('--out <file>', 'write the token to this file (mode 0600) instead of printing it; give it to the runner as ORDERLY_RUNNER_TOKEN_FILE')
    .option('--public-key <file>', "the runner's Ed25519 public key, made on the runner by `orderly runner keygen` (the private key never leaves it)")
    .option(
      '--key-out <file>',
      'without --public-key: make the key pair here and write the private key to this file (mode 0600); default: beside --out, .token -> .key',
    )
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { segment: string; out?: string; publicKey?: string; keyOut?: string; json?: boolean }) => {
      if (opts.publicKey && opts.keyOut)
        throw new OrderlyError('ORDERLY_E_BAD_REQUEST', '--public-key and --key-out exclude each other: a key made on the runner has no private key here');
      const keyOut = opts.publicKey ? undefined : (opts.keyOut ?? (opts.out ? defaultSigningKeyFile(opts.out) : undefined));
      if (!opts.publicKey && !keyOut)
        throw new OrderlyError(
          'ORDERLY_E_BAD_REQUEST',
          'say where the signing key goes (--key-out or --out), or give the public key of one made on the runner (--public-key)',
        );
      // Made here, not on the control room: the private key is never sent anywhere.
      const pair = opts.publicKey ? undefined : generateSigningKeyPair();
      const publicKey = pair?.publicKeyPem ?? readFileSync(opts.publicKey!, 'utf8');
      const registered = await client().request('POST', '/v1/runners', RegisteredRunnerView, { name, segment: opts.segment, publicKey });
      if (pair && keyOut) saveToken(keyOut, pair.privateKeyPem.trim());
      const { token, request, ...view } = registered;
      const keyNote = keyOut ? `; signing key written to ${keyOut}` : `; signing key ${view.keyId}`;
      const pending = request
        ? [`pending: a production runner admits nothing until a second security person confirms (orderly access approve ${request.id})`]
        : [];
      if (opts.out) {
        saveToken(opts.out, token);
        output(opts.json, { ...view, ...(request ? { request } : {}) }, [
          `registered ${view.name} for ${view.segment}; token written to ${opts.out}${keyNote}`,
          ...pending,
        ]);
      } else {
        output(opts.json, registered, [`registered ${view.name} for ${view.segment}${keyNote}; token, shown once:`, token, ...pending]);
      }
    });
  runners
    .command('revoke-bootstrap')
    .description("revoke a segment's bootstrap runner token and key (the files in the control room's secrets directory); permanent")
    .argument('<segment>', 'the segment')
    .option('--json', 'machine-readable output')
    .action(async (segment: string, opts: { json?: boolean }) => {
      const revoked = await client().request('DELETE', `/v1/runners/bootstrap/${encodeURIComponent(segment)}`, BootstrapRunnerRevocationView);
      output(opts.json, revoked, `bootstrap runner of ${revoked.segment} revoked at ${revoked.revokedAt}`);
    });
  runners
    .command('ls')
    .description('list runner identities')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { runners: list } = await client().request('GET', '/v1/runners', RunnerIdentityList);
      output(opts.json, list, list.length ? list.map(line) : ['no runner identities']);
    });
  runners
    .command('revoke')
    .description('revoke a runner identity; its next request is refused')
    .argument('<runner>', 'name or id')
    .option('--json', 'machine-readable output')
    .action(async (runner: string, opts: { json?: boolean }) => {
      const revoked = await client().request('DELETE', `/v1/runners/${encodeURIComponent(runner)}`, RunnerIdentityView);
      output(opts.json, revoked, line(revoked));
    });
  return runners;
}
