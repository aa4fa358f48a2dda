import { gzipSync } from 'node:zlib';

/**
 * Builds raw ustar entries exactly as given, including the hostile ones our own writer refuses
 * to produce (`..` paths, links, devices, bad checksums, truncation), so tests can feed them to
 * the reader and the API.
 */
export interface RawEntry {
  name: string;
  /** ustar typeflag: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, 'x' pax… */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  /** Declared size when it should differ from the data's (truncation tests). */
  size?: number;
  prefix?: string;
  /** Added to the stored checksum, to produce a bad one. */
  checksumDelta?: number;
}

const BLOCK = 512;

export function rawTarHeader(entry: RawEntry): Buffer {
  const header = Buffer.alloc(BLOCK, 0);
  const size = entry.size ?? Buffer.byteLength(entry.data ?? '');
  header.write(entry.name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 8, 'ascii');
  header.write('0000000\0', 108, 8, 'ascii');
  header.write('0000000\0', 116, 8, 'ascii');
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
  header.write('00000000000\0', 136, 12, 'ascii');
  header.fill(' ', 148, 156);
  header.write(entry.type ?? '0', 156, 1, 'ascii');
  if (entry.linkname) header.write(entry.linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  if (entry.prefix) header.write(entry.prefix, 345, 155, 'utf8');
  let sum = entry.checksumDelta ?? 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return header;
}

/** Raw tar bytes (not gzipped), optionally without the end-of-archive blocks. */
export function rawTar(entries: RawEntry[], { end = true }: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from(entry.data ?? '');
    parts.push(rawTarHeader(entry), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK, 0));
  }
  if (end) parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

export const rawTgz = (entries: RawEntry[], options?: { end?: boolean }): Buffer => gzipSync(rawTar(entries, options));
