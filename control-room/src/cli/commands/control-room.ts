import { Command } from 'commander';
import { checkConfigCommand } from './check-config';

export function controlRoomCommand(): Command {
  const cr = new Command('control-room').description('the control room service');
  cr.command('serve')
    .description('serve the control room (configured by environment: see the README)')
    .action(async () => {
      // The server (Fastify, BullMQ, the database) is loaded only to serve: the CLI is a client.
      const { loadControlRoomConfig } = await import('../../config.js');
      const { startControlRoom } = await import('../../main.js');
      const config = loadControlRoomConfig();
      const running = await startControlRoom(config);
      process.stdout.write(`control room listening on ${running.url} (data in ${config.dataDir}, ${config.databaseUrl ? 'PostgreSQL' : 'embedded PGlite'})\n`);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(
          signal,
          () =>
            void running.close().then(
              () => process.exit(0),
              () => process.exit(1),
            ),
        );
      }
    });
  cr.addCommand(checkConfigCommand());
  return cr;
}
