import { createHash } from 'node:crypto';
import zlib, { gzipSync } from 'node:zlib';
import { ArchiveLimits, createArchive, DEFAULT_ARCHIVE_LIMITS, PackageFile, readArchive } from './tar';
import { RawEntry, rawTar, rawTarHeader, rawTgz } from '../testing/archives';
import { codeOf } from '../testing/errors';

const BLOCK = 512;
const craft = rawTgz;
const rawHeader = rawTarHeader;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const files: PackageFile[] = [
  { path: 'bot.json', data: Buffer.from('{"name":"fake-bot"}') },
  { path: 'src/main.js', data: Buffer.from('module.exports = async () => 42;\n') },
  { path: 'src/lib/util.js', data: Buffer.alloc(1300, 'x') },
  { path: 'empty.txt', data: Buffer.alloc(0) },
];

describe('createArchive', () => {
  it('gives identical bytes and sha256 for the same files in any order', () => {
    const a = createArchive(files);
    const b = createArchive([...files].reverse());
    const c = createArchive([files[2]!, files[0]!, files[3]!, files[1]!]);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
    expect(sha256(b)).toBe(sha256(a));
  });

  it('gives different bytes when a file changes', () => {
    const changed = files.map((f) => (f.path === 'src/main.js' ? { ...f, data: Buffer.from('module.exports = async () => 43;\n') } : f));
    expect(sha256(createArchive(changed))).not.toBe(sha256(createArchive(files)));
  });

  it('round-trips through readArchive, sorted by path', () => {
    const read = readArchive(createArchive(files));
    const expected = [...files].sort((x, y) => (x.path < y.path ? -1 : 1));
    expect(read.map((f) => f.path)).toEqual(expected.map((f) => f.path));
    for (const [i, f] of read.entries()) expect(f.data.equals(expected[i]!.data)).toBe(true);
  });

  it('refuses unsafe and duplicate paths when writing', () => {
    expect(codeOf(() => createArchive([{ path: '../x', data: Buffer.from('a') }]))).toBe('ORDERLY_E_PACKAGE_INVALID');
    expect(codeOf(() => createArchive([{ path: '/etc/x', data: Buffer.from('a') }]))).toBe('ORDERLY_E_PACKAGE_INVALID');
    const dup = { path: 'a.js', data: Buffer.from('a') };
    expect(codeOf(() => createArchive([dup, dup]))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });
});

describe('readArchive', () => {
  it('accepts a crafted archive with a folder entry and a prefix-split name', () => {
    const read = readArchive(
      craft([
        { name: 'src/', type: '5' },
        { name: 'main.js', prefix: 'src', data: Buffer.from('ok') },
      ]),
    );
    expect(read).toEqual([{ path: 'src/main.js', data: Buffer.from('ok') }]);
  });

  it.each([
    ['a `..` segment', '../escape.js'],
    ['a `..` segment in the middle', 'src/../../escape.js'],
    ['a trailing `..`', 'src/..'],
    ['an absolute path', '/etc/passwd'],
    ['a `./` segment', './bot.json'],
    ['a `./` segment in the middle', 'src/./main.js'],
    ['a backslash', 'src\\..\\x.js'],
    ['a space', 'bad name.js'],
  ])('refuses %s', (_what, name) => {
    expect(codeOf(() => readArchive(craft([{ name, data: Buffer.from('x') }])))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses a `..` hidden in the ustar prefix field', () => {
    expect(codeOf(() => readArchive(craft([{ name: 'x.js', prefix: '..', data: Buffer.from('x') }])))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it.each([
    ['a symlink', '2'],
    ['a hard link', '1'],
  ])('refuses %s even with a harmless target', (_what, type) => {
    expect(codeOf(() => readArchive(craft([{ name: 'link.js', type, linkname: 'bot.json' }])))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it.each([
    ['a character device', '3'],
    ['a block device', '4'],
    ['a fifo', '6'],
    ['a contiguous file', '7'],
    ['a pax extended header', 'x'],
    ['a pax global header', 'g'],
    ['a GNU long name', 'L'],
    ['a GNU long link name', 'K'],
  ])('refuses %s', (_what, type) => {
    const entries: RawEntry[] = [{ name: 'entry', type, data: type === 'x' || type === 'L' ? Buffer.from('30 path=../../etc/passwd\n') : undefined }];
    expect(codeOf(() => readArchive(craft(entries)))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses a duplicate path', () => {
    const entries = [
      { name: 'main.js', data: Buffer.from('first') },
      { name: 'main.js', data: Buffer.from('second') },
    ];
    expect(codeOf(() => readArchive(craft(entries)))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses a folder and a file with the same path', () => {
    const entries = [
      { name: 'src/', type: '5' },
      { name: 'src', data: Buffer.from('x') },
    ];
    expect(codeOf(() => readArchive(craft(entries)))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses a bad header checksum', () => {
    expect(codeOf(() => readArchive(craft([{ name: 'main.js', data: Buffer.from('x'), checksumDelta: 1 }])))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses a header whose size field is not octal', () => {
    const tar = rawTar([{ name: 'main.js', data: Buffer.from('x') }]);
    tar.write('0000000009\0', 124, 11, 'ascii');
    // Recompute the checksum so the size field is the only problem.
    tar.fill(' ', 148, 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += tar[i]!;
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
    expect(codeOf(() => readArchive(gzipSync(tar)))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses an archive whose file data is cut short', () => {
    // Declares 4 KiB but carries 10 bytes and no end blocks.
    const tar = Buffer.concat([rawHeader({ name: 'main.js', size: 4096 }), Buffer.from('0123456789')]);
    expect(codeOf(() => readArchive(gzipSync(tar)))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses an archive without end-of-archive blocks', () => {
    expect(codeOf(() => readArchive(craft([{ name: 'main.js', data: Buffer.from('x') }], { end: false })))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses an archive whose gzip stream is cut short', () => {
    const archive = createArchive(files);
    expect(codeOf(() => readArchive(archive.subarray(0, Math.floor(archive.length / 2))))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it.each([
    ['plain tar', rawTar([{ name: 'main.js', data: Buffer.from('x') }])],
    ['text', Buffer.from('definitely not gzip')],
    ['nothing', Buffer.alloc(0)],
  ])('refuses non-gzip input (%s)', (_what, input) => {
    expect(codeOf(() => readArchive(input))).toBe('ORDERLY_E_PACKAGE_INVALID');
  });

  it('refuses an archive over maxArchiveBytes before inflating it', () => {
    const archive = createArchive(files);
    const limits: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS, maxArchiveBytes: archive.length - 1 };
    expect(codeOf(() => readArchive(archive, limits))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
    expect(readArchive(archive, { ...limits, maxArchiveBytes: archive.length })).toHaveLength(files.length);
  });

  it('refuses files whose total size is over maxUnpackedBytes', () => {
    const archive = createArchive([
      { path: 'a.bin', data: Buffer.alloc(600, 1) },
      { path: 'b.bin', data: Buffer.alloc(600, 2) },
    ]);
    expect(codeOf(() => readArchive(archive, { ...DEFAULT_ARCHIVE_LIMITS, maxUnpackedBytes: 1000 }))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
    expect(readArchive(archive, { ...DEFAULT_ARCHIVE_LIMITS, maxUnpackedBytes: 1200 })).toHaveLength(2);
  });

  describe('gzip bomb', () => {
    const bombSize = 200 * 1024 * 1024;
    let bomb: Buffer;
    beforeAll(() => {
      // 200 MiB of zeros compress to about 200 KiB. Zeros also read as an empty tar, so if
      // the inflated size were not limited the archive would be accepted rather than refused.
      bomb = gzipSync(Buffer.alloc(bombSize), { level: 9 });
    });
    afterEach(() => jest.restoreAllMocks());

    it('is refused as too large, with the default limits', () => {
      expect(bomb.length).toBeLessThan(DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes);
      expect(codeOf(() => readArchive(bomb))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
    });

    it('stops inflating at the limit instead of inflating everything', () => {
      const gunzip = jest.spyOn(zlib, 'gunzipSync');
      const limits: ArchiveLimits = { maxArchiveBytes: 1024 * 1024, maxUnpackedBytes: 1024 * 1024, maxEntries: 10 };
      expect(codeOf(() => readArchive(bomb, limits))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
      expect(gunzip).toHaveBeenCalled();
      // Every inflation was cut off by the output limit: none returned the whole 200 MiB.
      for (const result of gunzip.mock.results) expect(result.type).toBe('throw');
    });

    it('is refused when a header declares a huge file', () => {
      const tar = Buffer.concat([rawHeader({ name: 'big.bin', size: 100 * 1024 * 1024 }), Buffer.alloc(2 * 1024 * 1024)]);
      expect(codeOf(() => readArchive(gzipSync(tar), { ...DEFAULT_ARCHIVE_LIMITS, maxUnpackedBytes: 1024 * 1024 }))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
    });
  });

  it('refuses too many entries', () => {
    const many = Array.from({ length: 6 }, (_, i) => ({ path: `f${i}.js`, data: Buffer.from(String(i)) }));
    const archive = createArchive(many);
    expect(codeOf(() => readArchive(archive, { ...DEFAULT_ARCHIVE_LIMITS, maxEntries: 5 }))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
    expect(readArchive(archive, { ...DEFAULT_ARCHIVE_LIMITS, maxEntries: 6 })).toHaveLength(6);
  });

  it('counts folder entries towards the entry limit', () => {
    const entries: RawEntry[] = Array.from({ length: 6 }, (_, i) => ({ name: `d${i}/`, type: '5' }));
    expect(codeOf(() => readArchive(craft(entries), { ...DEFAULT_ARCHIVE_LIMITS, maxEntries: 5 }))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
  });
});
