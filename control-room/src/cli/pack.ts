import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import {
  BotManifest, createArchive, digestOf, DsseEnvelope, IN_TOTO_PAYLOAD_TYPE, loadPrivateKey, MANIFEST_FILE, OrderlyError,
  PackageDigest, packageStatement, parseManifest, signEnvelope,
} from '@orderly/shared';

export const BUNDLE_FILE = 'bot.js';

export interface PackedBot {
  manifest: BotManifest;
  archive: Buffer;
  digest: PackageDigest;
  envelope: DsseEnvelope;
}

/**
 * Builds a bot package: the entry bundled (with the SDK it imports) into one CommonJS file, and
 * the manifest normalised to point at it. Same sources, same bytes: esbuild's output is
 * deterministic for a fixed working directory, and the archive fixes every other field.
 */
export async function packBot(dir: string, keyPem: string): Promise<PackedBot> {
  const botDir = resolve(dir);
  let manifestText: string;
  try {
    manifestText = readFileSync(join(botDir, MANIFEST_FILE), 'utf8');
  } catch {
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `no ${MANIFEST_FILE} in ${dir}`);
  }
  const manifest = parseManifest(manifestText);
  const key = loadPrivateKey(keyPem);
  let bundle: string;
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
    bundle = result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text?: string }[] }).errors?.[0]?.text ?? 'build failed';
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `cannot bundle ${manifest.entry}: ${first}`);
  }
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
