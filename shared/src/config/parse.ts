import { z } from 'zod';
import { OrderlyError } from '../errors';

/**
 * Parses a process's configuration once from the environment and freezes it. On failure the
 * error lists every invalid variable (never its value: it may be a secret).
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): Readonly<z.infer<S>> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`);
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, { variables: problems });
  }
  return Object.freeze(result.data) as Readonly<z.infer<S>>;
}

/** Optional environment string: unset and empty both mean "not given". */
export const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');
export const csv = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));
