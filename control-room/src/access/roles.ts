import { Permission, PERMISSIONS } from './permissions';

/**
 * The role table: the single source of truth for who may do what. Route handlers name a
 * permission; nothing else decides access. Separation of duties that depends on the target
 * (an approver may not promote a package they published) is checked where the target is known.
 */
export const ROLES = ['developer', 'approver', 'operator', 'security', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  developer: ['self', 'packages.publish', 'packages.read', 'runs.create.dev', 'runs.read', 'runs.read_phi.dev'],
  approver: ['self', 'packages.read', 'packages.promote'],
  // runs.create (any segment) includes what runs.create.dev allows; the run routes require the
  // latter and check the former for production segments; runs.read_phi likewise.
  operator: [
    'self',
    'packages.read',
    'runs.create',
    'runs.create.dev',
    'runs.read',
    'runs.read_phi',
    'runs.read_phi.dev',
    'runs.cancel',
    'dlq.read',
    'dlq.manage',
    'schedules.manage',
    'metrics.read',
  ],
  security: [
    'self',
    'keys.read',
    'keys.manage',
    'users.manage',
    'runners.manage',
    'credentials.read',
    'credentials.manage',
    'signing.manage',
    'compliance.read',
  ],
  auditor: ['self', 'audit.read', 'compliance.read'],
  // The bootstrap identity: everything a person can hold, to create the first users.
  admin: PERMISSIONS.filter((p) => p !== 'runner.api' && p !== 'public'),
};

/** The permissions of role bindings (`operator`, `operator@dev`): see bindings.ts for the segments. */
export function permissionsOf(roles: readonly string[]): Set<Permission> {
  return new Set(
    roles.flatMap((text) => {
      const role = text.split('@')[0] as Role;
      return (ROLES as readonly string[]).includes(role) ? ROLE_PERMISSIONS[role] : [];
    }),
  );
}
