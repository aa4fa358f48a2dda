import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { generateSigningKeyPair, KeyId, OrderlyError, PublisherKeyView } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { output } from '../output';

export function keysCommand(client: () => ApiClient): Command {
  const keys = new Command('keys').description('publisher signing keys');
  keys
    .command('generate')
    .description('make an Ed25519 key pair: FILE (private, mode 0600) and FILE.pub')
    .requiredOption('--out <file>', 'where to write the private key')
    .option('--json', 'machine-readable output')
    .action((opts: { out: string; json?: boolean }) => {
      const pair = generateSigningKeyPair();
      try {
        // 'wx': never overwrite an existing key by accident.
        writeFileSync(opts.out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      } catch {
        throw new OrderlyError('ORDERLY_E_KEY_CONFLICT', `${opts.out} already exists or cannot be written; not overwritten`);
      }
      chmodSync(opts.out, 0o600);
      writeFileSync(`${opts.out}.pub`, pair.publicKeyPem, { mode: 0o644 });
      output(opts.json, { keyId: pair.keyId, privateKey: opts.out, publicKey: `${opts.out}.pub` }, [
        `key id ${pair.keyId}`,
        `private key ${opts.out} (0600)`,
        `public key  ${opts.out}.pub`,
      ]);
    });
  keys
    .command('register')
    .description('register a publisher public key with the control room (packages it signs are then accepted)')
    .requiredOption('--name <name>', 'a name for the key, e.g. the publisher')
    .requiredOption('--public-key <file>', 'the .pub file made by keys generate')
    .option('--owner-user <username>', 'the person who holds the key (its team decides which bots it may publish); this or --owner-service is required')
    .option('--owner-service <name>', 'or the service account that holds it (owned by a person)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { name: string; publicKey: string; ownerUser?: string; ownerService?: string; json?: boolean }) => {
      if (opts.ownerUser && opts.ownerService) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a key has one holder: --owner-user or --owner-service');
      const owner = opts.ownerUser ? { kind: 'user', name: opts.ownerUser } : opts.ownerService ? { kind: 'service', name: opts.ownerService } : undefined;
      if (!owner) throw new OrderlyError('ORDERLY_E_KEY_HOLDER_REQUIRED', 'a publisher key needs a holder: --owner-user USERNAME or --owner-service NAME');
      const key = await client().request('POST', '/v1/keys', PublisherKeyView, { name: opts.name, publicKeyPem: readFileSync(opts.publicKey, 'utf8'), owner });
      output(opts.json, key, `registered ${key.name} (${key.keyId}) held by ${key.owner ?? '?'}`);
    });
  keys
    .command('ls')
    .description('list registered publisher keys')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { keys: list } = await client().request('GET', '/v1/keys', z.object({ keys: z.array(PublisherKeyView) }));
      output(
        opts.json,
        list,
        list.map((k) => `${k.keyId}  ${k.name}  ${k.owner ?? '(bound to nobody: publishes nothing)'}${k.revokedAt ? `  REVOKED ${k.revokedAt}` : ''}`),
      );
    });
  keys
    .command('revoke')
    .description('revoke a publisher key: packages signed by it stop being runnable at once, everywhere')
    .argument('<key-id>', 'the key id (see keys ls)')
    .option('--json', 'machine-readable output')
    .action(async (keyId: string, opts: { json?: boolean }) => {
      if (!KeyId.safeParse(keyId).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'key ids are 64 hex digits (see orderly keys ls)');
      const key = await client().request('POST', `/v1/keys/${keyId}/revoke`, PublisherKeyView);
      output(opts.json, key, `revoked ${key.name} (${key.keyId}) at ${key.revokedAt ?? '?'}`);
    });
  return keys;
}
