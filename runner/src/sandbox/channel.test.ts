import { PassThrough } from 'node:stream';
import { encodeFrame, FrameReader, MAX_FRAME_BYTES, openChannel } from './channel';

const header = (length: number) => {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length, 0);
  return h;
};

test('frames cut anywhere, or several in one chunk, come out whole and in order', () => {
  const bytes = Buffer.concat([encodeFrame({ type: 'log', n: 1 }), encodeFrame({ type: 'done', text: 'ünïcode' }), encodeFrame([1, 2, 3])]);
  for (const size of [1, 3, 5, 7, bytes.length]) {
    const reader = new FrameReader();
    const out: unknown[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(...reader.push(bytes.subarray(i, i + size)));
    expect(out).toEqual([{ type: 'log', n: 1 }, { type: 'done', text: 'ünïcode' }, [1, 2, 3]]);
  }
});

test('a frame that is not JSON, or says it is over the limit, is refused, and nothing after it is taken', () => {
  const garbage = new FrameReader();
  expect(() => garbage.push(Buffer.concat([header(9), Buffer.from('{not json'), encodeFrame({ after: true })]))).toThrow('a frame that is not JSON');
  expect(garbage.push(encodeFrame({ later: true }))).toEqual([]);
  const huge = new FrameReader();
  // Refused from its header alone: the reader does not wait for (or buffer) 2 GiB.
  expect(() => huge.push(header(0x7fffffff))).toThrow(`a frame of ${0x7fffffff} bytes is over the channel's ${MAX_FRAME_BYTES}`);
  expect(() => encodeFrame('x'.repeat(MAX_FRAME_BYTES))).toThrow('over the channel');
});

test('a violation is reported once and closes the channel; the process is not thrown at', () => {
  const socket = new PassThrough();
  const messages: unknown[] = [];
  const violations: string[] = [];
  const channel = openChannel(socket, { onMessage: (m) => messages.push(m), onViolation: (r) => violations.push(r) });
  socket.write(encodeFrame({ ok: 1 }));
  socket.write(Buffer.concat([header(4), Buffer.from('\xff\xfe\x00\x01', 'latin1')]));
  socket.write(encodeFrame({ ok: 2 }));
  expect(messages).toEqual([{ ok: 1 }]);
  expect(violations).toEqual(['a frame that is not JSON']);
  expect(channel.open).toBe(false);
});
