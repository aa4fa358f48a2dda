import { SegmentName } from '@orderly/shared';

/**
 * Every permission a route can require. Routes name exactly one (`config.permission`); roles are
 * sets of them (`roles.ts`). `public` routes need no credential; `runner.api` is held only by
 * runner identities, never by a role a person can have.
 */
export const PERMISSIONS = [
  'public',
  'runner.api',
  // Bot developers
  'packages.publish',
  'packages.read',
  // Approvers
  'packages.promote',
  // Operators (developers hold runs.create.dev: runs in non-production segments only)
  'runs.create',
  'runs.create.dev',
  'runs.read',
  // A run's input, result, logs and screenshots: asked with a reason, audited per read.
  // Developers hold runs.read_phi.dev: PHI of runs in non-production segments only.
  'runs.read_phi',
  'runs.read_phi.dev',
  'runs.cancel',
  'dlq.read',
  'dlq.manage',
  'schedules.manage',
  // Security team
  'keys.read',
  'keys.manage',
  'users.manage',
  'runners.manage',
  'credentials.read',
  'credentials.manage',
  'signing.manage',
  // Auditors
  'audit.read',
  // Scrapers and auditors: Prometheus metrics and compliance reports
  'metrics.read',
  'compliance.read',
  // Every signed-in principal: its own sessions and tokens
  'self',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Who is calling. People and service accounts carry their roles' permissions (narrowed by a
 * token's scope); a runner identity is bound to one segment. `actor` is what the audit log records.
 */
export interface Principal {
  kind: 'admin' | 'user' | 'service' | 'runner';
  /** Stable id: user id, service account id, runner id, or `admin`. */
  id: string;
  /** The audit log's actor string, e.g. `user:alice`, `runner:demo-1`, `admin`. */
  actor: string;
  permissions: ReadonlySet<Permission>;
  /** Runners only: the one segment this identity serves. */
  segment?: SegmentName;
  /** People and service accounts: the roles in effect (a token's scopes within the owner's roles). */
  roles?: readonly string[];
  /** How the principal authenticated: decides CSRF (sessions) and how a step-up is proven. */
  credential?: PrincipalCredential;
}

export type PrincipalCredential =
  { kind: 'bootstrap' } | { kind: 'session'; sessionHash: string; csrfHash: string; steppedUpAt: number | null } | { kind: 'token'; tokenId: string };

/** All a runner identity may do: the runner API of its own segment. */
export const RUNNER_PERMISSIONS: ReadonlySet<Permission> = new Set(['runner.api']);

export const can = (principal: Principal | undefined, permission: Permission): boolean =>
  permission === 'public' || (principal?.permissions.has(permission) ?? false);
