import { z } from 'zod';
import { ERROR_CODES, ErrorCode, hasCode, OrderlyError } from '@orderly/shared';
import { CliConfig } from './config';

/** A small typed client of the control room's HTTP API; responses are parsed with zod. */
export class ApiClient {
  /**
   * `stepUpCode` reads a current TOTP code when the control room answers that an action needs a
   * fresh second factor; the request is then sent once more with it. (A refused step-up changed
   * nothing: the check runs before the route.)
   */
  constructor(
    private readonly config: CliConfig,
    private readonly stepUpCode?: () => Promise<string>,
  ) {}

  /** The control room's base URL. */
  get url(): string {
    return this.config.url;
  }

  async request<S extends z.ZodType>(method: string, path: string, schema: S, body?: unknown, headers: Record<string, string> = {}): Promise<z.infer<S>> {
    try {
      return await this.send(method, path, schema, body, headers);
    } catch (err) {
      if (!this.stepUpCode || !hasCode(err, 'ORDERLY_E_STEP_UP_REQUIRED') || 'x-orderly-totp' in headers) throw err;
      return this.send(method, path, schema, body, { ...headers, 'x-orderly-totp': await this.stepUpCode() });
    }
  }

  /**
   * A streamed answer (an export): the body as it arrives, never buffered whole. Errors answered
   * before the body starts are thrown as in `request`.
   */
  async stream(path: string, headers: Record<string, string> = {}): Promise<ReadableStream<Uint8Array>> {
    let response: Response;
    try {
      response = await fetch(`${this.config.url}${path}`, {
        headers: { ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}), ...headers },
      });
    } catch {
      throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `cannot reach the control room at ${this.config.url} (is it running? see ORDERLY_URL)`);
    }
    if (!response.ok || !response.body) {
      const payload = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
      const code = payload?.error?.code;
      throw new OrderlyError(
        code && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'ORDERLY_E_INTERNAL',
        payload?.error?.message ?? `control room answered ${response.status}`,
      );
    }
    return response.body;
  }

  private async send<S extends z.ZodType>(method: string, path: string, schema: S, body: unknown, headers: Record<string, string>): Promise<z.infer<S>> {
    let response: Response;
    try {
      response = await fetch(`${this.config.url}${path}`, {
        method,
        headers: {
          ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `cannot reach the control room at ${this.config.url} (is it running? see ORDERLY_URL)`);
    }
    const payload = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
    if (!response.ok) {
      const code = payload?.error?.code;
      throw new OrderlyError(
        code && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'ORDERLY_E_INTERNAL',
        payload?.error?.message ?? `control room answered ${response.status}`,
      );
    }
    const parsed = schema.safeParse(payload);
    if (!parsed.success) throw new OrderlyError('ORDERLY_E_INTERNAL', `unexpected response from ${method} ${path}`);
    return parsed.data;
  }
}

/** A text resource (PEM) from a public route; errors as in `ApiClient.request`. */
export async function fetchText(url: string, path: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(`${url}${path}`);
  } catch {
    throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', `cannot reach the control room at ${url} (is it running? see ORDERLY_URL)`);
  }
  if (!response.ok) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `control room answered ${response.status} for ${path}`);
  return response.text();
}
