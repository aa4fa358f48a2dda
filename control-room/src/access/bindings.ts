import { SegmentName } from '@orderly/shared';
import { Permission, Principal } from './permissions';
import { Role, ROLE_PERMISSIONS, ROLES } from './roles';

/**
 * Role bindings: a role held everywhere (`operator`) or in one segment (`operator@dev`). A binding
 * scoped to a segment grants the role's segment-bound permissions (runs, dead letters, schedules)
 * in that segment only; its other permissions (reading packages, publishing) are not per segment.
 * An operator of `dev` therefore neither lists, reads nor touches a `prod` run.
 */
export interface Binding {
  role: Role;
  /** `null`: every segment. */
  segment: SegmentName | null;
}

/** Permissions whose objects live in one segment: only these are narrowed by a scoped binding. */
export const SEGMENT_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>([
  'runs.create',
  'runs.create.dev',
  'runs.read',
  'runs.read_phi',
  'runs.read_phi.dev',
  'runs.cancel',
  'dlq.read',
  'dlq.manage',
  'schedules.manage',
]);

/** Roles a binding may scope to a segment: those whose work is about runs. */
export const SCOPABLE_ROLES: readonly Role[] = ['developer', 'operator'];

/** Roles whose grant needs a second security person (a pending request another person confirms). */
export const SENSITIVE_ROLES: readonly Role[] = ['security', 'approver', 'admin'];

export const BINDING_PATTERN = /^([a-z]+)(?:@([a-z][a-z0-9-]{0,31}))?$/;

/** Parses `role` or `role@segment`; undefined when it is neither a role nor a scopable one. */
export function parseBinding(text: string): Binding | undefined {
  const match = BINDING_PATTERN.exec(text);
  if (!match) return undefined;
  const role = match[1] as Role;
  if (!(ROLES as readonly string[]).includes(role)) return undefined;
  const segment = (match[2] ?? null) as SegmentName | null;
  if (segment !== null && !SCOPABLE_ROLES.includes(role)) return undefined;
  return { role, segment };
}

export const formatBinding = (b: Binding): string => (b.segment === null ? b.role : `${b.role}@${b.segment}`);

/** The bindings of a principal's role strings (unparseable ones are dropped: they grant nothing). */
export function bindingsOf(roles: readonly string[]): Binding[] {
  return roles.flatMap((r) => {
    const b = parseBinding(r);
    return b ? [b] : [];
  });
}

/** Every permission any binding grants, in some segment: what a route's permission gate checks. */
export function permissionsOfBindings(roles: readonly string[]): Set<Permission> {
  return new Set(bindingsOf(roles).flatMap((b) => ROLE_PERMISSIONS[b.role]));
}

/**
 * The segments where `principal` holds `permission`: 'all', or a set (possibly empty). The
 * bootstrap admin holds everything everywhere; a runner holds nothing here (its segment is its
 * identity, checked by the runner API).
 */
export function segmentsWith(principal: Principal | undefined, permission: Permission): 'all' | ReadonlySet<string> {
  if (!principal || !principal.permissions.has(permission)) return new Set();
  if (principal.kind === 'admin' || !SEGMENT_PERMISSIONS.has(permission)) return 'all';
  const segments = new Set<string>();
  for (const b of bindingsOf(principal.roles ?? [])) {
    if (!ROLE_PERMISSIONS[b.role].includes(permission)) continue;
    if (b.segment === null) return 'all';
    segments.add(b.segment);
  }
  return segments;
}

/** Whether `principal` holds `permission` in `segment`. */
export function canIn(principal: Principal | undefined, permission: Permission, segment: string): boolean {
  const segments = segmentsWith(principal, permission);
  return segments === 'all' || segments.has(segment);
}

/** Whether the grantor's own bindings cover `wanted`: the same role, everywhere or in that segment. */
export function covers(grantor: readonly Binding[], wanted: Binding): boolean {
  return grantor.some((g) => g.role === 'admin' || (g.role === wanted.role && (g.segment === null || g.segment === wanted.segment)));
}
