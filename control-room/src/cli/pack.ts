import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import {
  BotManifest,
  createArchive,
  digestOf,
  DsseEnvelope,
  IN_TOTO_PAYLOAD_TYPE,
  loadPrivateKey,
  MANIFEST_FILE,
  OrderlyError,
  PackageDigest,
  packageStatement,
  parseManifest,
  signEnvelope,
} from '@orderly/shared';

export const BUNDLE_FILE = 'bot.js';

export interface PackedBot {
  manifest: BotManifest;
  archive: Buffer;
  digest: PackageDigest;
  envelope: DsseEnvelope;
}

/** A bot bundled as a package holds it: the manifest pointing at the bundle, and the bundle's source. */
export interface BundledBot {
  manifest: BotManifest;
  /** The entry bundled with the SDK it imports into one CommonJS file (the package's `bot.js`). */
  code: string;
}

/** Reads and checks DIR's bot.json (`ORDERLY_E_MANIFEST_INVALID` when missing or invalid). */
function readManifest(botDir: string, dir: string): BotManifest {
  let manifestText: string;
  try {
    manifestText = readFileSync(join(botDir, MANIFEST_FILE), 'utf8');
  } catch {
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `no ${MANIFEST_FILE} in ${dir}`);
  }
  return parseManifest(manifestText);
}

/** The entry bundled (with the SDK it imports) into one CommonJS file; deterministic for a fixed directory. */
async function bundleEntry(botDir: string, manifest: BotManifest): Promise<string> {
  try {
    const result = await build({
      absWorkingDir: botDir,
      entryPoints: [manifest.entry],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      write: false,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      // The bot gets Playwright objects from its context; it must not load its own copy.
      external: ['playwright-core', 'playwright'],
    });
    return result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text?: string }[] }).errors?.[0]?.text ?? 'build failed';
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `cannot bundle ${manifest.entry}: ${first}`);
  }
}

/**
 * Bundles the bot in DIR exactly as `orderly bot pack` puts it in its package (`bot pack` and
 * `bot try` share it): the manifest normalised to point at the bundle, and the bundle.
 */
export async function bundleBot(dir: string): Promise<BundledBot> {
  const botDir = resolve(dir);
  const manifest = readManifest(botDir, dir);
  const code = await bundleEntry(botDir, manifest);
  return { manifest: { ...manifest, entry: BUNDLE_FILE }, code };
}

/**
 * Builds a bot package: the entry bundled (with the SDK it imports) into one CommonJS file, and
 * the manifest normalised to point at it. Same sources, same bytes: esbuild's output is
 * deterministic for a fixed working directory, and the archive fixes every other field.
 */
export async function packBot(dir: string, keyPem: string): Promise<PackedBot> {
  const botDir = resolve(dir);
  const manifest = readManifest(botDir, dir);
  const key = loadPrivateKey(keyPem);
  const bundle = await bundleEntry(botDir, manifest);
  const packaged: BotManifest = { ...manifest, entry: BUNDLE_FILE };
  const archive = createArchive([
    { path: MANIFEST_FILE, data: Buffer.from(`${JSON.stringify(packaged, null, 2)}\n`) },
    { path: BUNDLE_FILE, data: Buffer.from(bundle) },
  ]);
  const digest = digestOf(archive);
  const statement = packageStatement(manifest.name, manifest.version, digest.slice('sha256:'.length));
  const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), key);
  return { manifest: packaged, archive, digest, envelope };
}
