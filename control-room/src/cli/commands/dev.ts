import { writeFileSync } from 'node:fs';
import { Command } from 'commander';

export function devCommand(): Command {
  const dev = new Command('dev').description('development helpers');
  dev
    .command('vault')
    .description('an in-memory server speaking the Vault HTTP API for the endpoints Orderly uses, like `vault server -dev` (loopback only, not for production)')
    .option('--port <port>', 'port to listen on (0: any free port)', '8200')
    .option('--host <host>', 'loopback address to bind', '127.0.0.1')
    .option('--token-file <file>', 'also write the root token to this file (mode 0600)')
    .action(async (opts: { port: string; host: string; tokenFile?: string }) => {
      // Loaded here, not at the top: every other command starts without the dev Vault's modules.
      const { startDevVault } = await import('@orderly/shared/vault');
      const vault = await startDevVault({ port: Number(opts.port), host: opts.host });
      if (opts.tokenFile) writeFileSync(opts.tokenFile, vault.rootToken, { mode: 0o600 });
      process.stderr.write('WARNING: the dev Vault keeps everything in memory, unsealed, with a root token. It is not for production.\n');
      process.stdout.write(
        [`VAULT_ADDR=${vault.address}`, `root token: ${vault.rootToken}${opts.tokenFile ? ` (also in ${opts.tokenFile})` : ''}`, `unseal key: ${vault.unsealKey}`, ''].join('\n'),
      );
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void vault.close().then(() => process.exit(0)));
    });
  return dev;
}
