import { gunzipSync, gzipSync } from 'node:zlib';
import { OrderlyError } from '../errors';

/**
 * A minimal ustar writer and a strict reader for bot packages. We own this code rather than use
 * a general tar library because packages need far less than tar can express, and every feature
 * we do not accept (links, devices, pax and GNU long names, absolute or `..` paths) is a feature
 * that cannot be used against the runner.
 */
const BLOCK = 512;

export interface PackageFile {
  path: string;
  data: Buffer;
}

export interface ArchiveLimits {
  /** Largest compressed archive accepted. */
  maxArchiveBytes: number;
  /** Largest total of unpacked file sizes. */
  maxUnpackedBytes: number;
  maxEntries: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxArchiveBytes: 10 * 1024 * 1024, maxUnpackedBytes: 50 * 1024 * 1024, maxEntries: 1000 };

const SAFE_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]{1,100}$/;

function writeString(header: Buffer, value: string, offset: number, length: number): void {
  header.write(value, offset, length, 'utf8');
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  header.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function headerFor(path: string, size: number): Buffer {
  const header = Buffer.alloc(BLOCK, 0);
  writeString(header, path, 0, 100);
  writeOctal(header, 0o644, 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, size, 124, 12);
  writeOctal(header, 0, 136, 12); // mtime: fixed, so the same files give the same bytes
  header.fill(' ', 148, 156); // checksum field counts as spaces while summing
  header.write('0', 156, 1, 'ascii');
  writeString(header, 'ustar\0', 257, 6);
  writeString(header, '00', 263, 2);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return header;
}

/** Deterministic .tgz: sorted paths, fixed metadata, fixed gzip settings. Same files, same bytes. */
export function createArchive(files: PackageFile[]): Buffer {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  for (const file of sorted) {
    if (!SAFE_PATH.test(file.path)) throw new OrderlyError('ORDERLY_E_PACKAGE_INVALID', `unsafe path in package: ${JSON.stringify(file.path)}`);
    if (seen.has(file.path)) throw new OrderlyError('ORDERLY_E_PACKAGE_INVALID', `duplicate path in package: ${file.path}`);
    seen.add(file.path);
    parts.push(headerFor(file.path, file.data.length), file.data);
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return gzipSync(Buffer.concat(parts), { level: 9 });
}

function readString(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function readOctal(block: Buffer, offset: number, length: number): number {
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new OrderlyError('ORDERLY_E_PACKAGE_INVALID', 'package archive has a corrupt header');
  return parseInt(text, 8);
}

function invalid(message: string): OrderlyError {
  return new OrderlyError('ORDERLY_E_PACKAGE_INVALID', message);
}

/**
 * Reads a package archive fully into memory, refusing anything but regular files and folders
 * with safe relative paths, and enforcing size and entry limits before and while inflating.
 */
export function readArchive(archive: Buffer, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): PackageFile[] {
  if (archive.length > limits.maxArchiveBytes) {
    throw new OrderlyError('ORDERLY_E_PACKAGE_TOO_LARGE', `package archive is ${archive.length} bytes; the limit is ${limits.maxArchiveBytes}`);
  }
  let tar: Buffer;
  try {
    // maxOutputLength stops a gzip bomb while it inflates, not after. The tar framing adds
    // headers and padding per entry on top of the payload.
    tar = gunzipSync(archive, { maxOutputLength: limits.maxUnpackedBytes + (limits.maxEntries + 2) * BLOCK * 2 });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new OrderlyError('ORDERLY_E_PACKAGE_TOO_LARGE', `package unpacks to more than ${limits.maxUnpackedBytes} bytes`);
    }
    throw invalid('package is not a gzip archive');
  }
  const files: PackageFile[] = [];
  const seen = new Set<string>();
  let total = 0;
  let offset = 0;
  for (;;) {
    if (offset + BLOCK > tar.length) throw invalid('package archive is truncated');
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    if (sum !== readOctal(header, 148, 8)) throw invalid('package archive has a bad header checksum');
    const type = String.fromCharCode(header[156]!);
    const prefix = readString(header, 345, 155);
    const name = (prefix ? `${prefix}/` : '') + readString(header, 0, 100);
    const size = readOctal(header, 124, 12);
    offset += BLOCK;
    if (type === '1' || type === '2') throw invalid(`package contains a link: ${JSON.stringify(name)}`);
    if (type !== '0' && type !== '\0' && type !== '5')
      throw invalid(`package contains an entry of unsupported type ${JSON.stringify(type)}: ${JSON.stringify(name)}`);
    const path = type === '5' ? name.replace(/\/$/, '') : name;
    if (!SAFE_PATH.test(path)) throw invalid(`package contains an unsafe path: ${JSON.stringify(name)}`);
    if (seen.has(path)) throw invalid(`package contains ${path} twice`);
    seen.add(path);
    if (seen.size > limits.maxEntries) throw new OrderlyError('ORDERLY_E_PACKAGE_TOO_LARGE', `package has more than ${limits.maxEntries} entries`);
    if (type === '5') continue;
    total += size;
    if (total > limits.maxUnpackedBytes) throw new OrderlyError('ORDERLY_E_PACKAGE_TOO_LARGE', `package unpacks to more than ${limits.maxUnpackedBytes} bytes`);
    if (offset + size > tar.length) throw invalid('package archive is truncated');
    files.push({ path, data: Buffer.from(tar.subarray(offset, offset + size)) });
    offset += size + ((BLOCK - (size % BLOCK)) % BLOCK);
  }
  return files;
}
