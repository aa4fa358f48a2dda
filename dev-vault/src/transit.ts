import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import type { HandlerContext, MountEngine, Route } from './routing';
import { MESSAGES, VaultHttpError, badRequest, type JsonObject, type LogicalResponse } from './types';
import { decodeBase64Strict, fieldBool, fieldDuration, fieldInt, fieldString, rfc3339, unixSeconds } from './util';

type KeyType = 'aes256-gcm96' | 'ed25519';

interface KeyVersion {
  createdAt: number;
  aes?: Buffer;
  ed25519?: { privateKey: KeyObject; publicKey: string };
}

interface TransitKey {
  name: string;
  type: KeyType;
  versions: Map<number, KeyVersion>;
  latestVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  deletionAllowed: boolean;
  exportable: boolean;
  allowPlaintextBackup: boolean;
  autoRotatePeriod: number;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

function newVersion(type: KeyType, now: number): KeyVersion {
  if (type === 'aes256-gcm96') return { createdAt: now, aes: randomBytes(32) };
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // The raw 32-byte public key, base64, as Vault shows it.
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { createdAt: now, ed25519: { privateKey, publicKey: raw.toString('base64') } };
}

function base64Field(ctx: HandlerContext, field: string, required: boolean): Buffer | undefined {
  const raw = fieldString(ctx.req.body, field);
  if (raw === undefined || raw === '') {
    if (required) throw badRequest(`missing ${field} to ${field === 'input' ? 'sign' : 'encrypt'}`);
    return undefined;
  }
  const decoded = decodeBase64Strict(raw);
  if (decoded === undefined) throw badRequest(`failed to base64-decode ${field}`);
  return decoded;
}

/** Splits `vault:v<N>:<base64>`; `what` is "ciphertext" or "signature" for the error text. */
function parseVersioned(value: string | undefined, what: 'ciphertext' | 'signature'): { version: number; payload: Buffer } {
  if (value === undefined || value === '') throw badRequest(`missing ${what}`);
  if (!value.startsWith('vault:')) throw badRequest(`invalid ${what}: no prefix`);
  const m = /^vault:v(\d+):(.*)$/.exec(value);
  const version = m?.[1] === undefined ? NaN : Number(m[1]);
  if (m === null || !Number.isInteger(version) || version <= 0) throw badRequest(`invalid ${what}: version number could not be decoded`);
  const payload = decodeBase64Strict(m[2] ?? '');
  if (payload === undefined) throw badRequest(`invalid ${what}: could not decode base64`);
  return { version, payload };
}

/**
 * Transit: named keys with versions, real AES-256-GCM (`vault:v<N>:` + base64(nonce‖ct‖tag))
 * and Ed25519 signatures. min_decryption_version is enforced on decrypt, rewrap and verify.
 */
export class TransitEngine implements MountEngine {
  readonly type = 'transit';
  private readonly keys = new Map<string, TransitKey>();

  constructor(private readonly now: () => number) {}

  readonly routes: Route[] = [
    { pattern: /^keys\/?$/, list: () => this.listKeys() },
    {
      pattern: /^keys\/(?<name>[^/]+)$/,
      exists: (ctx) => this.keys.has(ctx.params.name ?? ''),
      read: (ctx) => ({ data: this.keyData(this.key(ctx, 404)) }),
      write: (ctx) => this.createKey(ctx),
      delete: (ctx) => this.deleteKey(ctx),
    },
    { pattern: /^keys\/(?<name>[^/]+)\/config$/, write: (ctx) => this.configure(ctx) },
    {
      pattern: /^keys\/(?<name>[^/]+)\/rotate$/,
      write: (ctx) => {
        const key = this.key(ctx, 400);
        key.latestVersion += 1;
        key.versions.set(key.latestVersion, newVersion(key.type, this.now()));
        return { data: this.keyData(key) };
      },
    },
    { pattern: /^encrypt\/(?<name>[^/]+)$/, exists: (ctx) => this.keys.has(ctx.params.name ?? ''), write: (ctx) => this.encryptRoute(ctx) },
    { pattern: /^decrypt\/(?<name>[^/]+)$/, write: (ctx) => this.decryptRoute(ctx) },
    { pattern: /^rewrap\/(?<name>[^/]+)$/, write: (ctx) => this.rewrapRoute(ctx) },
    { pattern: /^datakey\/(?<kind>[^/]+)\/(?<name>[^/]+)$/, write: (ctx) => this.datakeyRoute(ctx) },
    { pattern: /^sign\/(?<name>[^/]+)(?:\/(?<hash>[^/]+))?$/, write: (ctx) => this.signRoute(ctx) },
    { pattern: /^verify\/(?<name>[^/]+)(?:\/(?<hash>[^/]+))?$/, write: (ctx) => this.verifyRoute(ctx) },
  ];

  private key(ctx: HandlerContext, missingStatus: 400 | 404, message?: string): TransitKey {
    const name = ctx.params.name ?? '';
    const key = this.keys.get(name);
    if (key === undefined) {
      throw missingStatus === 404 ? new VaultHttpError(404, []) : badRequest(message ?? `no existing key named ${name} could be found`);
    }
    return key;
  }

  private listKeys(): LogicalResponse {
    if (this.keys.size === 0) throw new VaultHttpError(404, []);
    return { data: { keys: [...this.keys.keys()].sort() } };
  }

  private keyData(key: TransitKey): JsonObject {
    const keys: JsonObject = {};
    for (const [n, v] of key.versions) {
      if (n < key.minDecryptionVersion) continue;
      keys[String(n)] =
        v.ed25519 === undefined ? unixSeconds(v.createdAt) : { creation_time: rfc3339(v.createdAt), name: 'ed25519', public_key: v.ed25519.publicKey };
    }
    const aes = key.type === 'aes256-gcm96';
    return {
      type: key.type,
      deletion_allowed: key.deletionAllowed,
      derived: false,
      exportable: key.exportable,
      allow_plaintext_backup: key.allowPlaintextBackup,
      keys,
      latest_version: key.latestVersion,
      min_available_version: 0,
      min_decryption_version: key.minDecryptionVersion,
      min_encryption_version: key.minEncryptionVersion,
      name: key.name,
      supports_encryption: aes,
      supports_decryption: aes,
      supports_derivation: true,
      supports_signing: !aes,
      imported: false,
      auto_rotate_period: key.autoRotatePeriod,
    };
  }

  private newKey(name: string, typeText: string | undefined): TransitKey {
    const type = typeText === undefined || typeText === '' ? 'aes256-gcm96' : typeText;
    if (type !== 'aes256-gcm96' && type !== 'ed25519') {
      throw badRequest(`the dev Vault supports transit key types aes256-gcm96 and ed25519, not "${type}"`);
    }
    const key: TransitKey = {
      name,
      type,
      versions: new Map([[1, newVersion(type, this.now())]]),
      latestVersion: 1,
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
      deletionAllowed: false,
      exportable: false,
      allowPlaintextBackup: false,
      autoRotatePeriod: 0,
    };
    this.keys.set(name, key);
    return key;
  }

  private createKey(ctx: HandlerContext): LogicalResponse {
    const name = ctx.params.name ?? '';
    const b = ctx.req.body;
    if (fieldBool(b, 'derived') === true || fieldBool(b, 'convergent_encryption') === true) {
      throw badRequest('the dev Vault does not support derived transit keys');
    }
    const existing = this.keys.get(name);
    if (existing !== undefined) return { data: this.keyData(existing), warnings: [`key ${name} already existed`] };
    const key = this.newKey(name, fieldString(b, 'type'));
    key.exportable = fieldBool(b, 'exportable') ?? false;
    key.allowPlaintextBackup = fieldBool(b, 'allow_plaintext_backup') ?? false;
    key.autoRotatePeriod = fieldDuration(b, 'auto_rotate_period') ?? 0;
    return { data: this.keyData(key) };
  }

  private deleteKey(ctx: HandlerContext): null {
    const key = this.keys.get(ctx.params.name ?? '');
    if (key === undefined) return null;
    if (!key.deletionAllowed) throw badRequest('deletion is not allowed for this key');
    this.keys.delete(key.name);
    return null;
  }

  private configure(ctx: HandlerContext): LogicalResponse {
    const key = this.key(ctx, 400);
    const b = ctx.req.body;
    const minDecryption = fieldInt(b, 'min_decryption_version');
    const minEncryption = fieldInt(b, 'min_encryption_version');
    const nextDecryption = minDecryption === undefined ? key.minDecryptionVersion : minDecryption <= 0 ? 1 : minDecryption;
    const nextEncryption = minEncryption ?? key.minEncryptionVersion;
    if (nextDecryption > key.latestVersion) throw badRequest('cannot set min decryption version to a value greater than the latest version');
    if (nextEncryption < 0 || nextEncryption > key.latestVersion)
      throw badRequest('cannot set min encryption version to a value greater than the latest version');
    if (nextEncryption > 0 && nextEncryption < nextDecryption) {
      throw badRequest('cannot set min encryption/decryption values; min encryption version must be greater than or equal to min decryption version');
    }
    const exportable = fieldBool(b, 'exportable');
    if (exportable === false && key.exportable) throw badRequest('export cannot be disabled on a key that already has it enabled');
    key.minDecryptionVersion = nextDecryption;
    key.minEncryptionVersion = nextEncryption;
    key.deletionAllowed = fieldBool(b, 'deletion_allowed') ?? key.deletionAllowed;
    key.exportable = exportable ?? key.exportable;
    key.allowPlaintextBackup = fieldBool(b, 'allow_plaintext_backup') ?? key.allowPlaintextBackup;
    key.autoRotatePeriod = fieldDuration(b, 'auto_rotate_period') ?? key.autoRotatePeriod;
    return { data: this.keyData(key) };
  }

  /** The version to encrypt with: the latest unless key_version asks for an allowed older one. */
  private encryptionVersion(key: TransitKey, requested: number | undefined): number {
    if (requested === undefined || requested === 0) return key.latestVersion;
    if (requested > key.latestVersion) throw badRequest('requested version for encryption is greater than the latest key version');
    if (requested < key.minEncryptionVersion) throw badRequest('requested version for encryption is less than the minimum encryption key version');
    return requested;
  }

  private encrypt(key: TransitKey, version: number, plaintext: Buffer, aad: Buffer | undefined): string {
    const material = key.versions.get(version)?.aes;
    if (material === undefined) throw badRequest(`key type ${key.type} does not support encryption`);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', material, nonce);
    if (aad !== undefined) cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return `vault:v${version}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')}`;
  }

  private decrypt(key: TransitKey, ciphertext: string | undefined, aad: Buffer | undefined): Buffer {
    if (key.type !== 'aes256-gcm96') throw badRequest(`key type ${key.type} does not support decryption`);
    const { version, payload } = parseVersioned(ciphertext, 'ciphertext');
    if (version < key.minDecryptionVersion) throw badRequest(MESSAGES.tooOld);
    const material = key.versions.get(version)?.aes;
    if (version > key.latestVersion || material === undefined) throw badRequest('invalid ciphertext: version is too new');
    if (payload.length < NONCE_BYTES + TAG_BYTES) throw badRequest('invalid ciphertext: unable to decrypt');
    try {
      const decipher = createDecipheriv('aes-256-gcm', material, payload.subarray(0, NONCE_BYTES));
      if (aad !== undefined) decipher.setAAD(aad);
      decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
      return Buffer.concat([decipher.update(payload.subarray(NONCE_BYTES, payload.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw badRequest('cipher: message authentication failed');
    }
  }

  private refuseBatch(ctx: HandlerContext): void {
    if (ctx.req.body.batch_input !== undefined) throw badRequest('the dev Vault does not support batch_input');
    // Context only matters for derived keys, which the dev Vault refuses; Vault still decodes it.
    base64Field(ctx, 'context', false);
  }

  /** Encrypt upserts an aes256-gcm96 key like Vault (the ACL asked for `create` in that case). */
  private encryptRoute(ctx: HandlerContext): LogicalResponse {
    this.refuseBatch(ctx);
    const name = ctx.params.name ?? '';
    const key = this.keys.get(name) ?? this.newKey(name, fieldString(ctx.req.body, 'type'));
    const plaintext = base64Field(ctx, 'plaintext', false) ?? Buffer.alloc(0);
    if (fieldString(ctx.req.body, 'plaintext') === undefined) throw badRequest('missing plaintext to encrypt');
    const version = this.encryptionVersion(key, fieldInt(ctx.req.body, 'key_version'));
    return { data: { ciphertext: this.encrypt(key, version, plaintext, base64Field(ctx, 'associated_data', false)), key_version: version } };
  }

  private decryptRoute(ctx: HandlerContext): LogicalResponse {
    this.refuseBatch(ctx);
    const key = this.key(ctx, 400, 'encryption key not found');
    const plaintext = this.decrypt(key, fieldString(ctx.req.body, 'ciphertext'), base64Field(ctx, 'associated_data', false));
    return { data: { plaintext: plaintext.toString('base64') } };
  }

  private rewrapRoute(ctx: HandlerContext): LogicalResponse {
    this.refuseBatch(ctx);
    const key = this.key(ctx, 400, 'encryption key not found');
    const plaintext = this.decrypt(key, fieldString(ctx.req.body, 'ciphertext'), undefined);
    const version = this.encryptionVersion(key, fieldInt(ctx.req.body, 'key_version'));
    return { data: { ciphertext: this.encrypt(key, version, plaintext, undefined), key_version: version } };
  }

  private datakeyRoute(ctx: HandlerContext): LogicalResponse {
    const kind = ctx.params.kind;
    if (kind !== 'plaintext' && kind !== 'wrapped') throw badRequest('invalid type');
    this.refuseBatch(ctx);
    const key = this.key(ctx, 400, 'encryption key not found');
    const bits = fieldInt(ctx.req.body, 'bits') ?? 256;
    if (bits !== 128 && bits !== 256 && bits !== 512) throw badRequest('invalid bits length');
    const dataKey = randomBytes(bits / 8);
    const version = this.encryptionVersion(key, undefined);
    // Vault encrypts the raw key bytes, so transit/decrypt of the ciphertext gives back `plaintext`.
    const ciphertext = this.encrypt(key, version, dataKey, undefined);
    const data: JsonObject = { ciphertext, key_version: version };
    if (kind === 'plaintext') data.plaintext = dataKey.toString('base64');
    return { data };
  }

  private signRoute(ctx: HandlerContext): LogicalResponse {
    const key = this.key(ctx, 400, 'signing key not found');
    if (key.type !== 'ed25519') throw badRequest(`key type ${key.type} does not support signing`);
    const input = base64Field(ctx, 'input', true) ?? Buffer.alloc(0);
    const version = this.encryptionVersion(key, fieldInt(ctx.req.body, 'key_version'));
    const material = key.versions.get(version)?.ed25519;
    if (material === undefined) throw badRequest('signing key version not found');
    const signature = sign(null, input, material.privateKey);
    return { data: { signature: `vault:v${version}:${signature.toString('base64')}`, key_version: version } };
  }

  private verifyRoute(ctx: HandlerContext): LogicalResponse {
    const key = this.key(ctx, 400, 'signature verification key not found');
    if (key.type !== 'ed25519') throw badRequest(`key type ${key.type} does not support verification`);
    const input = base64Field(ctx, 'input', true) ?? Buffer.alloc(0);
    const { version, payload } = parseVersioned(fieldString(ctx.req.body, 'signature'), 'signature');
    if (version < key.minDecryptionVersion) throw badRequest(MESSAGES.tooOld);
    const material = key.versions.get(version)?.ed25519;
    if (material === undefined) throw badRequest('invalid signature: version is too new');
    return { data: { valid: verify(null, input, material.privateKey, payload) } };
  }
}
