import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import {
  ClaimAnswer,
  DsseEnvelope,
  ERROR_CODES,
  ErrorCode,
  KeyId,
  OrderlyError,
  PackageDigest,
  RenewResponse,
  RunnerPackageRelease,
  SafeDetails,
  StepBeginResponse,
} from '@orderly/shared';

export const PackageResponse = z.object({
  archive: z.base64(),
  envelope: DsseEnvelope,
  publisherKeyId: KeyId,
  publisherPublicKeyPem: z.string(),
  // The release state as of this fetch; a cached package asks again on every run (`release`).
  publisherKeyRevokedAt: z.string().nullable().default(null),
  attestations: z.array(DsseEnvelope).max(100).default([]),
});
export type PackageResponse = z.infer<typeof PackageResponse>;

/** The runner's view of the control room's runner API. */
export interface ControlRoomClient {
  /**
   * Claims the run for a new attempt (numbered by the control room, with a fencing token and a
   * lease of `leaseMs`), or is told to wait first; `ORDERLY_E_RUN_ALREADY_ACTIVE` while another
   * attempt's lease is alive.
   */
  claim(runId: string, runnerId: string, leaseMs?: number): Promise<ClaimAnswer>;
  /** Renews the lease of the attempt the fencing token belongs to. */
  renew(runId: string, attempt: number, fence: string): Promise<RenewResponse>;
  /** Begins a step checkpoint of the run's current attempt (fenced by its token). */
  beginStep(runId: string, attempt: number, fence: string, name: string, rerun: boolean): Promise<StepBeginResponse>;
  /** Records a step of the current attempt done, with its JSON result (a repeat is a no-op). */
  completeStep(runId: string, attempt: number, fence: string, name: string, result: unknown): Promise<void>;
  fetchPackage(digest: PackageDigest): Promise<PackageResponse>;
  /** The publisher key's revocation and the release attestations of a package, now. */
  packageRelease(digest: PackageDigest): Promise<RunnerPackageRelease>;
  recordLease(runId: string, attempt: number, fence: string, accessor: string): Promise<void>;
  uploadScreenshot(runId: string, attempt: number, name: string, png: Buffer): Promise<void>;
}

/** TLS material for HTTPS to the control room: the CA to trust, and a client certificate for mTLS. */
export interface ControlRoomTls {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/** Reads the runner's TLS files (config: ORDERLY_CONTROL_ROOM_CA_FILE, ORDERLY_RUNNER_CERT_FILE, ORDERLY_RUNNER_KEY_FILE). */
export function loadControlRoomTls(files: {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}): ControlRoomTls | undefined {
  if (!files.caFile && !files.certFile) return undefined;
  const read = (path: string | undefined, what: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch {
      throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `cannot read ${what} at ${path}`);
    }
  };
  return {
    ca: read(files.caFile, "the control room's CA"),
    cert: read(files.certFile, 'the runner certificate'),
    key: read(files.keyFile, 'the runner private key'),
  };
}

/** Error details from the control room, kept only when they are flat safe values (e.g. `retryInMs`). */
function safeDetails(details: unknown): SafeDetails {
  if (typeof details !== 'object' || details === null) return {};
  return Object.fromEntries(
    Object.entries(details)
      .filter(([, v]) => typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 200))
      .slice(0, 20),
  ) as SafeDetails;
}

interface RawResponse {
  status: number;
  body: unknown;
}
type Transport = (url: string, init: { method: string; headers: Record<string, string>; body?: string | undefined }) => Promise<RawResponse>;

const TIMEOUT_MS = 30_000;

/** Node's fetch (plain HTTP, or HTTPS with the system's trust store). */
const fetchTransport: Transport = async (url, init) => {
  const response = await fetch(url, {
    method: init.method,
    headers: init.headers,
    ...(init.body === undefined ? {} : { body: init.body }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  if (response.status === 204) return { status: 204, body: undefined };
  return { status: response.status, body: await response.json().catch(() => undefined) };
};

/**
 * HTTPS on `node:https`: Node 20's fetch takes no CA or client certificate without undici. TLS 1.3
 * only, like the server; one keep-alive agent per client.
 */
function httpsTransport(tls: ControlRoomTls): Transport {
  const agent = new Agent({ keepAlive: true, minVersion: 'TLSv1.3', ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}) });
  return (url, init) =>
    new Promise<RawResponse>((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method, headers: init.headers, agent, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(init.body);
    });
}

export function httpControlRoomClient(baseUrl: string, token: string, tls?: ControlRoomTls): ControlRoomClient {
  const transport = tls && baseUrl.startsWith('https:') ? httpsTransport(tls) : fetchTransport;
  async function call<S extends z.ZodType>(path: string, schema: S, init: { method?: string; body?: string } = {}): Promise<z.infer<S>> {
    let response: RawResponse;
    try {
      response = await transport(`${baseUrl}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
        body: init.body,
      });
    } catch {
      throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `control room unreachable at ${baseUrl}`);
    }
    if (response.status === 204) return schema.parse(undefined);
    const body = response.body as { error?: { code?: string; message?: string; details?: unknown } } | undefined;
    if (response.status < 200 || response.status >= 300) {
      const code = body?.error?.code;
      if (code && Object.hasOwn(ERROR_CODES, code)) throw new OrderlyError(code as ErrorCode, body?.error?.message ?? code, safeDetails(body?.error?.details));
      if (response.status >= 500) throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `control room answered ${response.status}`);
      throw new OrderlyError('ORDERLY_E_INTERNAL', `control room answered ${response.status}`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new OrderlyError('ORDERLY_E_INTERNAL', `control room sent a malformed response to ${path.split('/').slice(0, 4).join('/')}`);
    return parsed.data;
  }
  return {
    claim: (runId, runnerId, leaseMs) =>
      call(`/v1/runner/runs/${runId}/claim`, ClaimAnswer, {
        method: 'POST',
        body: JSON.stringify({ runnerId, ...(leaseMs === undefined ? {} : { leaseMs }) }),
      }),
    renew: (runId, attempt, fence) => call(`/v1/runner/runs/${runId}/renew`, RenewResponse, { method: 'POST', body: JSON.stringify({ attempt, fence }) }),
    beginStep: (runId, attempt, fence, name, rerun) =>
      call(`/v1/runner/runs/${runId}/steps/begin`, StepBeginResponse, { method: 'POST', body: JSON.stringify({ attempt, fence, name, rerun }) }),
    completeStep: (runId, attempt, fence, name, result) =>
      call(`/v1/runner/runs/${runId}/steps/complete`, z.undefined(), {
        method: 'POST',
        body: JSON.stringify({ attempt, fence, name, ...(result === undefined ? {} : { result }) }),
      }),
    fetchPackage: (digest) => call(`/v1/runner/packages/${digest}`, PackageResponse),
    packageRelease: (digest) => call(`/v1/runner/packages/${digest}/release`, RunnerPackageRelease),
    uploadScreenshot: async (runId, attempt, name, png) => {
      await call(`/v1/runner/runs/${runId}/screenshots`, z.object({ id: z.number() }), {
        method: 'POST',
        body: JSON.stringify({ attempt, name, png: png.toString('base64') }),
      });
    },
    recordLease: (runId, attempt, fence, accessor) =>
      call(`/v1/runner/runs/${runId}/lease`, z.undefined(), { method: 'POST', body: JSON.stringify({ attempt, fence, accessor }) }),
  };
}
