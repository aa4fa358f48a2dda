import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { OrderlyError } from '@orderly/shared';

/**
 * The dev Vault is a development dependency: loaded here, not at the top, so every other command
 * starts without it, and a production install (without it) says so instead of a stack trace.
 */
async function loadDevVault(): Promise<typeof import('@orderly/dev-vault')> {
  try {
    return await import('@orderly/dev-vault');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new OrderlyError(
      'ORDERLY_E_DEV_VAULT_NOT_INSTALLED',
      'the dev Vault is a development tool and is not installed here: point VAULT_ADDR at a real Vault or OpenBao',
    );
  }
}

export function devCommand(): Command {
  const dev = new Command('dev').description('development helpers');
  dev
    .command('vault')
    .description('an in-memory server speaking the Vault HTTP API for the endpoints Orderly uses, like `vault server -dev` (loopback only, not for production)')
    .option('--port <port>', 'port to listen on (0: any free port)', '8200')
    .option('--host <host>', 'loopback address to bind', '127.0.0.1')
    .option('--token-file <file>', 'also write the root token to this file (mode 0600)')
    .action(async (opts: { port: string; host: string; tokenFile?: string }) => {
      const { startDevVault } = await loadDevVault();
      const vault = await startDevVault({ port: Number(opts.port), host: opts.host });
      if (opts.tokenFile) writeFileSync(opts.tokenFile, vault.rootToken, { mode: 0o600 });
      process.stderr.write('WARNING: the dev Vault keeps everything in memory, unsealed, with a root token. It is not for production.\n');
      process.stdout.write(
        [
          `VAULT_ADDR=${vault.address}`,
          `root token: ${vault.rootToken}${opts.tokenFile ? ` (also in ${opts.tokenFile})` : ''}`,
          `unseal key: ${vault.unsealKey}`,
          '',
        ].join('\n'),
      );
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void vault.close().then(() => process.exit(0)));
    });
  return dev;
}
