import { loadRunnerConfig, RunnerConfig } from '../config';

/**
 * The configuration of a local try (`orderly bot try`, `orderly-runner try`): the runner's own
 * configuration, parsed by the runner's schema from the same environment, so the sandbox is the one
 * a runner would make (`ORDERLY_SANDBOX`, `ORDERLY_SANDBOX_*` limits, `ORDERLY_CHROMIUM_PATH`,
 * `ORDERLY_EGRESS_DENY`, and Redis, the control room and Vault denied to the bot as infrastructure).
 * What only a queue-consuming runner needs is fixed here and never read: a try has no segment, no
 * control-room key or runner token (they name nothing that is opened), one slot, no pre-warming.
 */
export const TRY_FIXED = {
  ORDERLY_SEGMENT: 'local-try',
  ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: '/dev/null',
  ORDERLY_RUNNER_TOKEN_FILE: '/dev/null',
  ORDERLY_CONCURRENCY: '1',
  ORDERLY_SANDBOX_PREWARM: '0',
} as const;

export function loadTryConfig(env: Record<string, string | undefined> = process.env): RunnerConfig {
  // Quiet by default: the run's own log is the output; the runner's warnings go to stderr at `warn` only when asked.
  return loadRunnerConfig({ ...TRY_FIXED, ORDERLY_LOG_LEVEL: env.ORDERLY_LOG_LEVEL ?? 'error', ORDERLY_RUNNER_ID: `try-${process.pid}` }, env);
}

/**
 * The environment of `orderly-runner record`: Playwright's recorder (`playwright-core codegen`)
 * launched on the runner's Chromium (`ORDERLY_CHROMIUM_PATH`; the recorder reads it as
 * PWTEST_CLI_EXECUTABLE_PATH), with this process's environment (the display) otherwise.
 */
export function recorderEnv(chromiumPath: string, env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  return { ...env, PWTEST_CLI_EXECUTABLE_PATH: chromiumPath };
}
