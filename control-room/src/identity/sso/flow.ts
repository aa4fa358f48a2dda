import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { open, seal, SealedBox } from '@orderly/shared';

/**
 * The state of one sign-in between `/v1/auth/sso/start` and the provider's redirect back: state,
 * nonce and PKCE verifier, sealed (AES-256-GCM with the control room's data key) into a
 * short-lived cookie, so nothing is stored server-side and the browser can neither read nor alter
 * it. The cookie is SameSite=Lax: the provider's redirect back is a cross-site top-level GET.
 */
export const SSO_FLOW_COOKIE = 'orderly_sso_flow';
export const SSO_FLOW_PATH = '/v1/auth/sso';
/** How long a sign-in at the provider may take. */
export const SSO_FLOW_MINUTES = 10;
const AAD = 'orderly:sso-flow:v1';

/**
 * `orderly login --sso`: where the CLI listens (a loopback URL only, RFC 8252 section 7.3), the
 * PKCE challenge of the CLI process and its state. Checked when the sign-in starts, so nothing
 * but a loopback listener ever receives a CLI code.
 */
export const CliFlow = z.strictObject({
  redirect: z
    .string()
    .max(200)
    .regex(/^http:\/\/(127\.0\.0\.1|\[::1\]):\d{1,5}\/[A-Za-z0-9/_-]{0,100}$/, 'an http://127.0.0.1:<port>/<path> loopback URL'),
  challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url S256 PKCE challenge (43 characters)'),
  state: z.string().regex(/^[A-Za-z0-9_-]{16,200}$/, 'base64url, 16-200 characters'),
});
export type CliFlow = z.infer<typeof CliFlow>;

export const SsoFlow = z.strictObject({
  state: z.string().min(16).max(200),
  nonce: z.string().min(16).max(200),
  codeVerifier: z.string().min(43).max(128),
  expiresAt: z.number().int(),
  cli: CliFlow.optional(),
});
export type SsoFlow = z.infer<typeof SsoFlow>;

export function sealFlow(dataKey: Buffer, dataKeyId: string, flow: SsoFlow): string {
  return Buffer.from(JSON.stringify(seal(dataKey, dataKeyId, Buffer.from(JSON.stringify(flow)), AAD))).toString('base64url');
}

/** The flow in a cookie value; undefined when it is missing, altered, sealed with another key or expired. */
export function openFlow(dataKey: Buffer, value: string | undefined, now: number): SsoFlow | undefined {
  if (value === undefined || value.length > 4096) return undefined;
  try {
    const box = SealedBox.parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    const flow = SsoFlow.parse(JSON.parse(open(dataKey, box, AAD).toString('utf8')));
    return flow.expiresAt > now ? flow : undefined;
  } catch {
    return undefined;
  }
}

export function flowCookie(value: string): string {
  return `${SSO_FLOW_COOKIE}=${value}; Secure; HttpOnly; SameSite=Lax; Path=${SSO_FLOW_PATH}; Max-Age=${SSO_FLOW_MINUTES * 60}`;
}
export function clearFlowCookie(): string {
  return `${SSO_FLOW_COOKIE}=; Secure; HttpOnly; SameSite=Lax; Path=${SSO_FLOW_PATH}; Max-Age=0`;
}

/** The flow cookie's value from a Cookie header. */
export function flowCookieValue(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SSO_FLOW_COOKIE) return part.slice(at + 1).trim();
  }
  return undefined;
}

export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
