import { gzipSync } from 'node:zlib';

/**
 * Builds raw ustar entries exactly as given, including the hostile ones our own writer refuses
 * to produce (`..` paths, links, devices), so tests can feed them to the reader and the API.
 */
export interface RawEntry {
  name: string;
  /** ustar typeflag: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, 'x' pax… */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
}

export function rawTarHeader(entry: RawEntry, size: number): Buffer {
  const header = Buffer.alloc(512, 0);
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
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return header;
}

export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from(entry.data ?? '');
    parts.push(rawTarHeader(entry, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}

export const rawTgz = (entries: RawEntry[]): Buffer => gzipSync(rawTar(entries));
