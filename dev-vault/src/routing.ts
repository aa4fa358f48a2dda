import type { DevVaultCore } from './core';
import type { TokenEntry } from './tokens';
import type { LogicalResponse, RawResponse, VaultRequest } from './types';

/** Everything a handler may use: the request, path parameters, the core and the caller. */
export interface HandlerContext {
  req: VaultRequest;
  params: Record<string, string>;
  core: DevVaultCore;
  /** The authenticated token; undefined on unauthenticated routes. */
  caller: TokenEntry | undefined;
  /** Where the engine is mounted, with a trailing slash: `secret/`, `auth/approle/`. */
  mountPath: string;
}

export type Handler = (ctx: HandlerContext) => LogicalResponse | RawResponse | null;

/**
 * One path of an engine, matched against the path relative to its mount. `write` serves both
 * create and update; `exists` is Vault's existence check that decides which of the two
 * capabilities a POST/PUT needs.
 */
export interface Route {
  pattern: RegExp;
  read?: Handler;
  list?: Handler;
  write?: Handler;
  delete?: Handler;
  exists?: (ctx: HandlerContext) => boolean;
  unauthenticated?: boolean;
  /** Root-protected: the caller also needs `sudo` on the path. */
  sudo?: boolean;
}

export interface MountEngine {
  /** Written into every response as `mount_type`. */
  readonly type: string;
  readonly routes: readonly Route[];
}

export interface Mount {
  path: string;
  type: string;
  description: string;
  accessor: string;
  uuid: string;
  options: Record<string, string> | null;
  engine: MountEngine;
}

export function matchRoute(engine: MountEngine, rest: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of engine.routes) {
    const m = route.pattern.exec(rest);
    if (m) {
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) params[k] = v;
      return { route, params };
    }
  }
  return undefined;
}
