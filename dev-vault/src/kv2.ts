import { z } from 'zod';
import type { HandlerContext, MountEngine, Route } from './routing';
import { MESSAGES, VaultHttpError, badRequest, type JsonObject, type LogicalResponse } from './types';
import { fieldBool, fieldDuration, fieldInt, fieldStringMap, formatGoDuration, rfc3339 } from './util';

interface Version {
  data: JsonObject | null;
  createdAt: number;
  deletedAt: number | null;
  destroyed: boolean;
}

interface Entry {
  versions: Map<number, Version>;
  currentVersion: number;
  oldestVersion: number;
  createdAt: number;
  updatedAt: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: number;
  customMetadata: Record<string, string> | null;
}

const JsonMap = z.record(z.string(), z.unknown());

/** Vault keeps 10 versions when neither the mount nor the key says otherwise. */
const DEFAULT_MAX_VERSIONS = 10;

/** KV version 2: versioned secrets with check-and-set, soft delete, undelete and destroy. */
export class Kv2Engine implements MountEngine {
  readonly type = 'kv';
  private readonly entries = new Map<string, Entry>();
  private readonly config = { maxVersions: 0, casRequired: false, deleteVersionAfter: 0 };

  readonly routes: Route[] = [
    {
      pattern: /^config$/,
      read: () => ({
        data: {
          cas_required: this.config.casRequired,
          delete_version_after: formatGoDuration(this.config.deleteVersionAfter),
          max_versions: this.config.maxVersions,
        },
      }),
      write: (ctx) => {
        this.config.maxVersions = fieldInt(ctx.req.body, 'max_versions') ?? this.config.maxVersions;
        this.config.casRequired = fieldBool(ctx.req.body, 'cas_required') ?? this.config.casRequired;
        this.config.deleteVersionAfter = fieldDuration(ctx.req.body, 'delete_version_after') ?? this.config.deleteVersionAfter;
        return null;
      },
    },
    {
      pattern: /^data\/(?<path>.+)$/,
      exists: (ctx) => this.entries.has(keyOf(ctx)),
      read: (ctx) => this.read(ctx),
      write: (ctx) => this.write(ctx),
      delete: (ctx) => {
        const entry = this.entries.get(keyOf(ctx));
        const current = entry?.versions.get(entry.currentVersion);
        if (current !== undefined && current.deletedAt === null && !current.destroyed) current.deletedAt = ctx.core.now();
        return null;
      },
    },
    {
      pattern: /^delete\/(?<path>.+)$/,
      write: (ctx) =>
        this.eachVersion(ctx, (v, now) => {
          if (v.deletedAt === null && !v.destroyed) v.deletedAt = now;
        }),
    },
    {
      pattern: /^undelete\/(?<path>.+)$/,
      write: (ctx) =>
        this.eachVersion(ctx, (v) => {
          if (!v.destroyed) v.deletedAt = null;
        }),
    },
    {
      pattern: /^destroy\/(?<path>.+)$/,
      write: (ctx) =>
        this.eachVersion(ctx, (v) => {
          v.destroyed = true;
          v.data = null;
        }),
    },
    {
      pattern: /^metadata\/?(?<path>.*)$/,
      exists: (ctx) => this.entries.has(keyOf(ctx)),
      read: (ctx) => this.readMetadata(ctx),
      list: (ctx) => this.list(ctx),
      write: (ctx) => this.writeMetadata(ctx),
      delete: (ctx) => {
        this.entries.delete(keyOf(ctx));
        return null;
      },
    },
  ];

  private versionMetadata(entry: Entry, number: number, version: Version): JsonObject {
    return {
      created_time: rfc3339(version.createdAt),
      custom_metadata: entry.customMetadata === null ? null : { ...entry.customMetadata },
      deletion_time: version.deletedAt === null ? '' : rfc3339(version.deletedAt),
      destroyed: version.destroyed,
      version: number,
    };
  }

  /** A deleted or destroyed version is a 404 that still carries its metadata, as in Vault. */
  private read(ctx: HandlerContext): LogicalResponse {
    const entry = this.entries.get(keyOf(ctx));
    const raw = ctx.req.query.get('version');
    const asked = raw === null || raw === '' ? 0 : Number(raw);
    if (!Number.isInteger(asked) || asked < 0) throw badRequest('error converting input for field "version"');
    if (entry === undefined) throw new VaultHttpError(404, []);
    const number = asked === 0 ? entry.currentVersion : asked;
    const version = entry.versions.get(number);
    if (version === undefined) throw new VaultHttpError(404, []);
    const metadata = this.versionMetadata(entry, number, version);
    if (version.deletedAt !== null || version.destroyed || version.data === null) {
      return { status: 404, data: { data: null, metadata } };
    }
    return { data: { data: structuredClone(version.data), metadata } };
  }

  private write(ctx: HandlerContext): LogicalResponse {
    const body = ctx.req.body;
    if (body.data === undefined || body.data === null) throw badRequest('no data provided');
    const data = JsonMap.safeParse(body.data);
    if (!data.success) throw badRequest('error converting input for field "data"');
    const options = body.options === undefined || body.options === null ? undefined : JsonMap.safeParse(body.options);
    if (options !== undefined && !options.success) throw badRequest('error converting input for field "options"');
    const cas = options === undefined ? undefined : fieldInt(options.data, 'cas');
    const key = keyOf(ctx);
    const now = ctx.core.now();
    const existing = this.entries.get(key);
    if ((existing?.casRequired === true || this.config.casRequired) && cas === undefined) throw badRequest(MESSAGES.casRequired);
    if (cas !== undefined && cas !== (existing?.currentVersion ?? 0)) throw badRequest(MESSAGES.casMismatch);
    const entry = existing ?? this.newEntry(now);
    const number = entry.currentVersion + 1;
    const version: Version = { data: structuredClone(data.data) as JsonObject, createdAt: now, deletedAt: null, destroyed: false };
    entry.versions.set(number, version);
    entry.currentVersion = number;
    entry.updatedAt = now;
    this.prune(entry);
    this.entries.set(key, entry);
    return { data: this.versionMetadata(entry, number, version) };
  }

  private newEntry(now: number): Entry {
    return {
      versions: new Map(),
      currentVersion: 0,
      oldestVersion: 0,
      createdAt: now,
      updatedAt: now,
      maxVersions: 0,
      casRequired: false,
      deleteVersionAfter: 0,
      customMetadata: null,
    };
  }

  /** Drops versions past max_versions; Vault then reports the oldest kept as oldest_version. */
  private prune(entry: Entry): void {
    const max = entry.maxVersions > 0 ? entry.maxVersions : this.config.maxVersions > 0 ? this.config.maxVersions : DEFAULT_MAX_VERSIONS;
    const keepFrom = entry.currentVersion - max + 1;
    let pruned = false;
    for (const n of [...entry.versions.keys()]) {
      if (n < keepFrom) {
        entry.versions.delete(n);
        pruned = true;
      }
    }
    if (pruned) entry.oldestVersion = Math.min(...entry.versions.keys());
  }

  private eachVersion(ctx: HandlerContext, apply: (version: Version, now: number) => void): null {
    const raw = ctx.req.body.versions;
    const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : typeof raw === 'number' ? [raw] : [];
    const versions = list.map((v) => Number(v));
    if (versions.length === 0 || versions.some((v) => !Number.isInteger(v) || v <= 0)) throw badRequest('no version number provided');
    const entry = this.entries.get(keyOf(ctx));
    if (entry === undefined) return null;
    const now = ctx.core.now();
    for (const n of versions) {
      const version = entry.versions.get(n);
      if (version !== undefined) apply(version, now);
    }
    entry.updatedAt = now;
    return null;
  }

  private readMetadata(ctx: HandlerContext): LogicalResponse {
    const entry = this.entries.get(keyOf(ctx));
    if (entry === undefined) throw new VaultHttpError(404, []);
    const versions: JsonObject = {};
    for (const [n, v] of [...entry.versions].sort((a, b) => a[0] - b[0])) {
      versions[String(n)] = { created_time: rfc3339(v.createdAt), deletion_time: v.deletedAt === null ? '' : rfc3339(v.deletedAt), destroyed: v.destroyed };
    }
    return {
      data: {
        cas_required: entry.casRequired,
        created_time: rfc3339(entry.createdAt),
        current_version: entry.currentVersion,
        custom_metadata: entry.customMetadata === null ? null : { ...entry.customMetadata },
        delete_version_after: formatGoDuration(entry.deleteVersionAfter),
        max_versions: entry.maxVersions,
        oldest_version: entry.oldestVersion,
        updated_time: rfc3339(entry.updatedAt),
        versions,
      },
    };
  }

  private writeMetadata(ctx: HandlerContext): null {
    const key = keyOf(ctx);
    if (key === '') throw badRequest('missing path');
    const now = ctx.core.now();
    const entry = this.entries.get(key) ?? this.newEntry(now);
    const b = ctx.req.body;
    entry.maxVersions = fieldInt(b, 'max_versions') ?? entry.maxVersions;
    entry.casRequired = fieldBool(b, 'cas_required') ?? entry.casRequired;
    entry.deleteVersionAfter = fieldDuration(b, 'delete_version_after') ?? entry.deleteVersionAfter;
    const custom = fieldStringMap(b, 'custom_metadata');
    if (custom !== undefined) entry.customMetadata = custom;
    entry.updatedAt = now;
    this.entries.set(key, entry);
    this.prune(entry);
    return null;
  }

  /** LIST: direct children of the prefix, folders with a trailing slash; none is a bare 404. */
  private list(ctx: HandlerContext): LogicalResponse {
    const prefix = keyOf(ctx);
    const keys = new Set<string>();
    for (const key of this.entries.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    keys.delete('');
    if (keys.size === 0) throw new VaultHttpError(404, []);
    return { data: { keys: [...keys].sort() } };
  }
}

function keyOf(ctx: HandlerContext): string {
  return ctx.params.path ?? '';
}
