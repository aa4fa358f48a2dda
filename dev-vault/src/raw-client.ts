import NodeVault from 'node-vault';

/** Status and parsed body of one answer. */
export interface RawAnswer {
  statusCode: number;
  body: unknown;
}

/**
 * For tests: a node-vault client that resolves every answer with its status instead of
 * rejecting non-2xx ones, so tests can assert Vault's exact status codes and error bodies.
 */
export function rawVault(address: string, token = '') {
  const client = NodeVault({ endpoint: address, apiVersion: 'v1', debug: () => undefined });
  client.token = token;
  client.handleVaultResponse = (res) =>
    Promise.resolve(res === undefined ? { statusCode: 0, body: undefined } : { statusCode: res.statusCode, body: res.body });
  const answer = (p: Promise<unknown>): Promise<RawAnswer> => p as Promise<RawAnswer>;
  const opts = (headers?: Record<string, string>) => (headers === undefined ? {} : { headers });
  return {
    client,
    read: (path: string, headers?: Record<string, string>) => answer(client.read(path, opts(headers))),
    write: (path: string, data: unknown, headers?: Record<string, string>) => answer(client.write(path, data, opts(headers))),
    list: (path: string) => answer(client.list(path)),
    delete: (path: string) => answer(client.delete(path)),
    request: (method: string, path: string, data?: unknown, headers?: Record<string, string>) =>
      answer(client.request({ method, path: `/${path}`, ...(data === undefined ? {} : { json: data }), headers: { ...(headers ?? {}) } })),
  };
}

export type RawVault = ReturnType<typeof rawVault>;

/** `body` as an object, for reading fields in tests. */
export function obj(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`expected a JSON object, got ${typeof value}`);
  return value as Record<string, unknown>;
}

/** `body.data` (or `body.auth`, `body.wrap_info`) as an object. */
export function field(answer: RawAnswer, name: 'data' | 'auth' | 'wrap_info'): Record<string, unknown> {
  return obj(obj(answer.body)[name]);
}
