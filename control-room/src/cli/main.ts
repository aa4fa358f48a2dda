#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isOrderlyError } from '@orderly/shared';
import { ApiClient } from './api-client';
import { accessCommand } from './commands/access';
import { auditCommand } from './commands/audit';
import { batchCommand } from './commands/batch';
import { botCommand } from './commands/bot';
import { controlRoomCommand } from './commands/control-room';
import { credsCommand } from './commands/creds';
import { devCommand } from './commands/dev';
import { dlqCommand } from './commands/dlq';
import { keysCommand } from './commands/keys';
import { redactionCommand } from './commands/redaction';
import { runCommand } from './commands/run';
import { loginCommand, logoutCommand, readSecret } from './commands/login';
import { runnersCommand } from './commands/runners';
import { serviceAccountsCommand } from './commands/service-accounts';
import { tokensCommand } from './commands/tokens';
import { usersCommand } from './commands/users';
import { scheduleCommand } from './commands/schedule';
import { teamsCommand } from './commands/teams';
import { complianceCommand } from './commands/compliance';
import { backupCommand } from './commands/backup';
import { accessReviewCommand } from './commands/access-review';
import { loadCliConfig } from './config';

function runnerExecutable(): string {
  try {
    return require.resolve('@orderly/runner/bin/orderly-runner.js');
  } catch {
    return 'orderly-runner';
  }
}

/** Builds the `orderly` program; exported so tests can drive it without a child process. */
export function buildProgram(): Command {
  const program = new Command('orderly')
    .description('Orderly: signed RPA bot packages, a control room, and segment runners')
    .option('--url <url>', 'control room URL (default: ORDERLY_URL or http://127.0.0.1:7300)')
    .option('--token <token>', 'API token (default: ORDERLY_TOKEN, ORDERLY_TOKEN_FILE or the local control room admin token)')
    .showHelpAfterError()
    .exitOverride((err) => {
      // `orderly runner …` runs another binary: its exit code is ours (commander drops it otherwise).
      if (err.code === 'commander.executeSubCommandAsync') process.exit(err.exitCode);
      throw err;
    });
  // Promotion, key and credential changes and role changes may ask for a fresh TOTP code.
  const client = () =>
    new ApiClient(loadCliConfig(program.opts<{ url?: string; token?: string }>()), () => readSecret('this action needs a fresh second factor: TOTP code: '));
  program.addCommand(keysCommand(client));
  program.addCommand(botCommand(client));
  program.addCommand(teamsCommand(client));
  program.addCommand(runCommand(client));
  program.addCommand(batchCommand(client));
  program.addCommand(credsCommand(client));
  program.addCommand(auditCommand(client));
  program.addCommand(accessCommand(client).addCommand(accessReviewCommand(client)));
  program.addCommand(controlRoomCommand());
  program.addCommand(devCommand());
  program.addCommand(redactionCommand());
  program.addCommand(dlqCommand(client));
  const config = () => loadCliConfig(program.opts<{ url?: string; token?: string }>());
  program.addCommand(loginCommand(config));
  program.addCommand(logoutCommand(config));
  program.addCommand(usersCommand(client));
  program.addCommand(tokensCommand(client));
  program.addCommand(runnersCommand(client));
  program.addCommand(serviceAccountsCommand(client));
  program.addCommand(scheduleCommand(client));
  program.addCommand(complianceCommand(client));
  program.addCommand(backupCommand());
  // The runner is its own package and binary; `orderly runner …` execs `orderly-runner …` (found
  // where npm installed it, else on PATH). A process boundary, not an import: invariant 8 holds.
  program.command('runner', 'run a segment runner (`orderly runner start --segment S`)', { executableFile: runnerExecutable() });
  return program;
}

/** Runs the CLI on this process's arguments (the `orderly` bin). */
export function main(): void {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) {
        process.exitCode = err.exitCode;
        return;
      }
      const line = isOrderlyError(err)
        ? `${err.code}: ${err.message.split('\n').join(' ')}`
        : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
      process.stderr.write(`orderly: ${line}\n`);
      process.exitCode = 1;
    });
}
