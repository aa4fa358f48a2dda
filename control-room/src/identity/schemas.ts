import { z } from 'zod';
import { SegmentName } from '@orderly/shared';
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

const UUID_SHAPED = /^[0-9a-f]{8}-[0-9a-f]{4}-/i;
export const Username = z.string().regex(/^[a-z][a-z0-9._-]{1,63}$/, 'lower-case letters, digits, ".", "_" and "-" (2-64)').refine((u) => !UUID_SHAPED.test(u), 'must not look like an id');
export const IdentityName = z.string().regex(/^[a-z][a-z0-9-]{1,63}$/, 'lower-case letters, digits and dashes (2-64)').refine((u) => !UUID_SHAPED.test(u), 'must not look like an id');
const Password = z.string().min(12, 'at least 12 characters').max(256);
const Code = z.string().min(6).max(32);
const OpaqueSecret = z.string().min(16).max(256);

export const CreateUserRequest = z.strictObject({ username: Username, roles: z.array(PersonRole).min(1).max(5) });
export const SetRolesRequest = z.strictObject({ roles: z.array(PersonRole).max(5) });
export const StartEnrolmentRequest = z.strictObject({ username: Username, enrolmentSecret: OpaqueSecret });
export const ConfirmEnrolmentRequest = StartEnrolmentRequest.extend({ password: Password, code: Code });
/** `code` is a current TOTP code or one unused recovery code. */
export const SignInRequest = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(256), code: Code });
export const StepUpRequest = z.strictObject({ code: Code });

export const CreateTokenRequest = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._ -]{1,64}$/, 'letters, digits, ".", "_", "-" and spaces (1-64)'),
  /** A subset of the caller's roles; all of them when omitted. */
  scopes: z.array(Role).max(5).optional(),
  /** Required: every token expires. Capped by ORDERLY_TOKEN_MAX_DAYS. */
  expiresInDays: z.number().int().min(1),
});
export const TokenSignInRequest = SignInRequest.extend(CreateTokenRequest.shape);
export const CreateServiceAccountRequest = z.strictObject({ name: IdentityName, roles: z.array(ServiceRole).min(1).max(3) });
export const RegisterRunnerRequest = z.strictObject({ name: IdentityName, segment: SegmentName });
/** A path id: a UUID, or (users, service accounts) a name; never a character a name cannot hold. */
export const IdParam = z.strictObject({ id: z.union([z.uuid(), z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)]) });
export const ListTokensQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });

export const UserView = z.object({
  id: z.string(),
  username: z.string(),
  roles: z.array(Role),
  enrolled: z.boolean(),
  disabled: z.boolean(),
  lockedUntil: z.string().nullable(),
  createdAt: z.string(),
});
export type UserView = z.infer<typeof UserView>;
export const CreatedUserView = z.object({ user: UserView, enrolmentSecret: z.string(), enrolmentExpiresAt: z.string() });
export const UserList = z.object({ users: z.array(UserView) });
export const EnrolmentView = z.object({ otpauthUri: z.string(), secret: z.string() });
export const RecoveryCodesView = z.object({ recoveryCodes: z.array(z.string()) });
export const SessionView = z.object({ csrfToken: z.string(), expiresAt: z.string(), idleMinutes: z.number(), user: UserView });

export const TokenView = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  scopes: z.array(Role),
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

export const ServiceAccountView = z.object({ id: z.string(), name: z.string(), roles: z.array(Role), createdAt: z.string() });
export const ServiceAccountList = z.object({ serviceAccounts: z.array(ServiceAccountView) });

export const RunnerIdentityView = z.object({ id: z.string(), name: z.string(), segment: z.string(), revoked: z.boolean(), createdAt: z.string(), lastUsedAt: z.string().nullable() });
export type RunnerIdentityView = z.infer<typeof RunnerIdentityView>;
export const RegisteredRunnerView = RunnerIdentityView.extend({ token: z.string() });
export const RunnerIdentityList = z.object({ runners: z.array(RunnerIdentityView) });

export const WhoAmIView = z.object({ kind: z.string(), actor: z.string(), roles: z.array(z.string()), permissions: z.array(z.string()), segment: z.string().optional() });
