import { deflateSync } from 'node:zlib';
import { decodePng, encodeSolidPng } from './png';

/** Encodes raw pixels with a chosen filter per row, the way an encoder would. */
function encodeWithFilters(width: number, height: number, channels: 3 | 4, pixels: Uint8Array, filterOf: (y: number) => number): Buffer {
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const filter = filterOf(y);
    raw[y * (stride + 1)] = filter;
    for (let i = 0; i < stride; i++) {
      const x = pixels[y * stride + i]!;
      const a = i >= channels ? pixels[y * stride + i - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = i >= channels && y > 0 ? pixels[(y - 1) * stride + i - channels]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      raw[y * (stride + 1) + 1 + i] = (x - predictor) & 0xff;
    }
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, data, Buffer.alloc(4)]); // the decoder does not check CRCs
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 4 ? 6 : 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

describe('png', () => {
  it.each([3, 4] as const)('decodes every filter type (%i channels)', (channels) => {
    const width = 13;
    const height = 10;
    const pixels = noise(width * height * channels, channels);
    const decoded = decodePng(encodeWithFilters(width, height, channels, pixels, (y) => y % 5));
    expect([decoded.width, decoded.height]).toEqual([width, height]);
    for (let p = 0; p < width * height; p++) {
      for (let k = 0; k < channels; k++) expect(decoded.data[p * 4 + k]).toBe(pixels[p * channels + k]);
      if (channels === 3) expect(decoded.data[p * 4 + 3]).toBe(255);
    }
  });

  it('round-trips a solid image', () => {
    const decoded = decodePng(encodeSolidPng(7, 3, [10, 20, 30]));
    expect([decoded.width, decoded.height]).toEqual([7, 3]);
    for (let p = 0; p < 21; p++) expect(Array.from(decoded.data.subarray(p * 4, p * 4 + 4))).toEqual([10, 20, 30, 255]);
  });

  it('refuses what it cannot decode', () => {
    expect(() => decodePng(Buffer.from('not a png'))).toThrow('not a PNG');
    const png = encodeSolidPng(2, 2, [0, 0, 0]);
    const interlaced = Buffer.from(png);
    interlaced[8 + 8 + 12] = 1; // IHDR interlace byte
    expect(() => decodePng(interlaced)).toThrow('unsupported PNG');
    expect(() => encodeSolidPng(0, 1, [0, 0, 0])).toThrow();
  });
});
