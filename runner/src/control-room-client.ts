import { z } from 'zod';
import { ClaimAnswer, DsseEnvelope, ERROR_CODES, ErrorCode, KeyId, OrderlyError, PackageDigest, StepBeginResponse } from '@orderly/shared';

export const PackageResponse = z.object({ archive: z.base64(), envelope: DsseEnvelope, publisherKeyId: KeyId, publisherPublicKeyPem: z.string() });
export type PackageResponse = z.infer<typeof PackageResponse>;

/** The runner's view of the control room's runner API. */
export interface ControlRoomClient {
  /** Claims the run for a new attempt (numbered by the control room), or is told to wait first. */
  claim(runId: string, runnerId: string): Promise<ClaimAnswer>;
  /** Begins a step checkpoint of the run's current attempt. */
  beginStep(runId: string, attempt: number, name: string, rerun: boolean): Promise<StepBeginResponse>;
  /** Records a step of the current attempt done, with its JSON result. */
  completeStep(runId: string, attempt: number, name: string, result: unknown): Promise<void>;
  fetchPackage(digest: PackageDigest): Promise<PackageResponse>;
  recordLease(runId: string, attempt: number, accessor: string): Promise<void>;
  uploadScreenshot(runId: string, attempt: number, name: string, png: Buffer): Promise<void>;
}

export function httpControlRoomClient(baseUrl: string, token: string): ControlRoomClient {
  async function call<S extends z.ZodType>(path: string, schema: S, init: RequestInit = {}): Promise<z.infer<S>> {
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
        signal: AbortSignal.timeout(30_000),
      });
    } catch {
      throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `control room unreachable at ${baseUrl}`);
    }
    if (response.status === 204) return schema.parse(undefined);
    const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
    if (!response.ok) {
      const code = body?.error?.code;
      if (code && Object.hasOwn(ERROR_CODES, code)) throw new OrderlyError(code as ErrorCode, body?.error?.message ?? code);
      if (response.status >= 500) throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `control room answered ${response.status}`);
      throw new OrderlyError('ORDERLY_E_INTERNAL', `control room answered ${response.status}`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new OrderlyError('ORDERLY_E_INTERNAL', `control room sent a malformed response to ${path.split('/').slice(0, 4).join('/')}`);
    return parsed.data;
  }
  return {
    claim: (runId, runnerId) => call(`/v1/runner/runs/${runId}/claim`, ClaimAnswer, { method: 'POST', body: JSON.stringify({ runnerId }) }),
    beginStep: (runId, attempt, name, rerun) => call(`/v1/runner/runs/${runId}/steps/begin`, StepBeginResponse, { method: 'POST', body: JSON.stringify({ attempt, name, rerun }) }),
    completeStep: (runId, attempt, name, result) =>
      call(`/v1/runner/runs/${runId}/steps/complete`, z.undefined(), { method: 'POST', body: JSON.stringify({ attempt, name, ...(result === undefined ? {} : { result }) }) }),
    fetchPackage: (digest) => call(`/v1/runner/packages/${digest}`, PackageResponse),
    uploadScreenshot: async (runId, attempt, name, png) => {
      await call(`/v1/runner/runs/${runId}/screenshots`, z.object({ id: z.number() }), { method: 'POST', body: JSON.stringify({ attempt, name, png: png.toString('base64') }) });
    },
    recordLease: (runId, attempt, accessor) => call(`/v1/runner/runs/${runId}/lease`, z.undefined(), { method: 'POST', body: JSON.stringify({ attempt, accessor }) }),
  };
}
