import { z } from 'zod';
import { SegmentName } from '@orderly/shared';
import { parseBinding } from '../access/bindings';
import { ROLES } from '../access/roles';

/** Request and response shapes of the identity routes; the CLI parses responses with the same schemas. */

export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;
/** Roles a person may hold: `admin` is the bootstrap token only. */
export const PersonRole = Role.exclude(['admin']);
/**
 * Roles a service account may hold: automation publishes and starts runs, or reads for reports.
 * Never `security` or `admin` (they administer identities and keys), never `approver` (a
 * promotion is a person's decision, made with a fresh second factor).
 */
export const ServiceRole = z.enum(['developer', 'operator', 'auditor']);

/**
 * A role binding: a role everywhere (`operator`) or, for developers and operators, in one segment
 * (`operator@dev`). See access/bindings.ts.
 */
export const RoleBinding = z
  .string()
  .max(64)
  .refine((s) => parseBinding(s) !== undefined, 'a role, or developer@SEGMENT / operator@SEGMENT');
export const PersonBinding = RoleBinding.refine((s) => parseBinding(s)?.role !== 'admin', 'admin is the bootstrap token only');
export const ServiceBinding = RoleBinding.refine(
  (s) => (ServiceRole.options as readonly string[]).includes(parseBinding(s)?.role ?? ''),
  'service accounts hold developer, operator or auditor',
);

const UUID_SHAPED = /^[0-9a-f]{8}-[0-9a-f]{4}-/i;
export const Username = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{1,63}$/, 'lower-case letters, digits, ".", "_" and "-" (2-64)')
  .refine((u) => !UUID_SHAPED.test(u), 'must not look like an id');
export const IdentityName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,63}$/, 'lower-case letters, digits and dashes (2-64)')
  .refine((u) => !UUID_SHAPED.test(u), 'must not look like an id');
const Password = z.string().min(12, 'at least 12 characters').max(256);
const Code = z.string().min(6).max(32);
const OpaqueSecret = z.string().min(16).max(256);

export const CreateUserRequest = z.strictObject({ username: Username, roles: z.array(PersonBinding).min(1).max(10) });
export const SetRolesRequest = z.strictObject({ roles: z.array(PersonBinding).max(10) });
export const StartEnrolmentRequest = z.strictObject({ username: Username, enrolmentSecret: OpaqueSecret });
export const ConfirmEnrolmentRequest = StartEnrolmentRequest.extend({ password: Password, code: Code });
/** `code` is a current TOTP code or one unused recovery code. */
export const SignInRequest = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(256), code: Code });
export const StepUpRequest = z.strictObject({ code: Code });

export const CreateTokenRequest = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._ -]{1,64}$/, 'letters, digits, ".", "_", "-" and spaces (1-64)'),
  /** A subset of the caller's roles; all of them when omitted. */
  scopes: z.array(RoleBinding).max(10).optional(),
  /** Required: every token expires. Capped by ORDERLY_TOKEN_MAX_DAYS. */
  expiresInDays: z.number().int().min(1),
});
export const TokenSignInRequest = SignInRequest.extend(CreateTokenRequest.shape);
export const CreateServiceAccountRequest = z.strictObject({ name: IdentityName, roles: z.array(ServiceBinding).min(1).max(10) });
/**
 * `publicKey`: the runner's Ed25519 report-signing public key (SPKI PEM), made where the runner runs
 * (`orderly runner keygen`, or `orderly runners register`, which makes one locally). Without it the
 * control room makes the pair and answers the private key once, like the token; it keeps neither.
 */
/** `publicKey` is required (ORDERLY_E_RUNNER_KEY_REQUIRED, answered by the registry rather than as a generic schema error). */
export const RegisterRunnerRequest = z.strictObject({ name: IdentityName, segment: SegmentName, publicKey: z.string().min(1).max(2000).optional() });
export const SegmentParam = z.strictObject({ segment: SegmentName });
/** A path id: a UUID, or (users, service accounts) a name; never a character a name cannot hold. */
export const IdParam = z.strictObject({ id: z.union([z.uuid(), z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)]) });
export const ListTokensQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });

export const UserView = z.object({
  id: z.string(),
  username: z.string(),
  roles: z.array(z.string()),
  enrolled: z.boolean(),
  disabled: z.boolean(),
  lockedUntil: z.string().nullable(),
  createdAt: z.string(),
});
export type UserView = z.infer<typeof UserView>;
/** A pending sensitive change (access/requests.ts): a second security person confirms it. */
export const AccessRequestView = z.object({
  id: z.string(),
  kind: z.enum(['grant_roles', 'register_runner']),
  target: z.string(),
  rolesBefore: z.array(z.string()),
  rolesAfter: z.array(z.string()),
  segment: z.string().nullable(),
  requestedBy: z.string(),
  status: z.enum(['pending', 'approved', 'rejected']),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  createdAt: z.string(),
});
export const AccessRequestList = z.object({ requests: z.array(AccessRequestView) });
export const CreatedUserView = z.object({ user: UserView, enrolmentSecret: z.string(), enrolmentExpiresAt: z.string(), request: AccessRequestView.optional() });
/** `PUT /v1/users/:id/roles`: the person as changed (200), or unchanged with the pending request (202). */
export const SetRolesView = z.object({ user: UserView, request: AccessRequestView.optional() });
export const UserList = z.object({ users: z.array(UserView) });
export const EnrolmentView = z.object({ otpauthUri: z.string(), secret: z.string() });
export const RecoveryCodesView = z.object({ recoveryCodes: z.array(z.string()) });
export const SessionView = z.object({ csrfToken: z.string(), expiresAt: z.string(), idleMinutes: z.number(), user: UserView });

export const TokenView = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  scopes: z.array(z.string()),
  createdAt: z.string(),
  expiresAt: z.string(),
  revoked: z.boolean(),
  lastUsedAt: z.string().nullable(),
  /** In the caller's own list: the token this request was made with (what `orderly logout` revokes). */
  current: z.boolean().optional(),
});
export type TokenView = z.infer<typeof TokenView>;
/** The one response that carries the token itself: it is never shown again. */
export const CreatedTokenView = TokenView.extend({ token: z.string() });
export const TokenList = z.object({ tokens: z.array(TokenView) });

export const ServiceAccountView = z.object({
  id: z.string(),
  name: z.string(),
  roles: z.array(z.string()),
  createdAt: z.string(),
  disabled: z.boolean().default(false),
});
export const ServiceAccountList = z.object({ serviceAccounts: z.array(ServiceAccountView) });

/** `keyId`: the fingerprint reports are signed under; null for identities registered before keys (their reports are refused). */
export const RunnerIdentityView = z.object({
  id: z.string(),
  name: z.string(),
  segment: z.string(),
  revoked: z.boolean(),
  pending: z.boolean(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  keyId: z.string().nullable().default(null),
});
export type RunnerIdentityView = z.infer<typeof RunnerIdentityView>;
/** The token, shown once; never a private key: the runner made its own pair and sent the public key. */
export const RegisteredRunnerView = RunnerIdentityView.extend({ token: z.string(), request: AccessRequestView.optional() });
export const BootstrapRunnerRevocationView = z.object({ segment: z.string(), revokedAt: z.string(), revokedBy: z.string() });
export const RunnerIdentityList = z.object({ runners: z.array(RunnerIdentityView) });

export const WhoAmIView = z.object({
  kind: z.string(),
  actor: z.string(),
  roles: z.array(z.string()),
  permissions: z.array(z.string()),
  segment: z.string().optional(),
});
