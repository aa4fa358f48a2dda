import type { Duplex } from 'node:stream';

/**
 * The one channel between the runner and a sandbox: length-prefixed JSON frames over the socketpair
 * made at spawn (fd 3 in the sandbox). Not Node's built-in IPC: its parser runs in the runner's
 * event loop and throws, uncaught, on a frame it cannot read, so any bot that wrote a bad frame to
 * its IPC fd would end the whole runner and every run on it. Here whatever the sandbox writes is
 * read by this reader only: a frame that is too big, or not JSON, is a violation the runner answers
 * by ending that one sandbox.
 */

/** The channel's fd in the sandbox (after stdin, stdout and stderr). */
export const CHANNEL_FD = 3;

/** The largest frame either side takes (a masked full-page screenshot in base64 fits well). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const HEADER_BYTES = 4;

export class ChannelViolation extends Error {}

/** One frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON. */
export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new ChannelViolation(`a message of ${body.length} bytes is over the channel's ${MAX_FRAME_BYTES}`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Cuts a byte stream into frames; throws ChannelViolation on one it will not take (and takes nothing after). */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private broken = false;

  push(chunk: Buffer): unknown[] {
    if (this.broken) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: unknown[] = [];
    for (;;) {
      if (this.buffered < HEADER_BYTES) return messages;
      if (this.chunks[0]!.length < HEADER_BYTES) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const length = this.chunks[0]!.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) this.fail(`a frame of ${length} bytes is over the channel's ${MAX_FRAME_BYTES}`);
      // Joined only once the whole frame is here: a big frame in many chunks is copied once.
      if (this.buffered < HEADER_BYTES + length) return messages;
      const data = Buffer.concat(this.chunks, this.buffered);
      const body = data.subarray(HEADER_BYTES, HEADER_BYTES + length).toString('utf8');
      const rest = data.subarray(HEADER_BYTES + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      try {
        messages.push(JSON.parse(body));
      } catch {
        this.fail('a frame that is not JSON');
      }
    }
  }

  private fail(reason: string): never {
    this.broken = true;
    this.chunks = [];
    this.buffered = 0;
    throw new ChannelViolation(reason);
  }
}

export interface Channel {
  /** False once either side closed it or it was broken. */
  readonly open: boolean;
  send(message: unknown): void;
  close(): void;
}

/**
 * A channel over `socket`. `onMessage` gets each frame's JSON value, unvalidated (the caller
 * parses it with zod); `onViolation` is called once for a frame the reader refused, after which
 * nothing more is read; `onClose` when the other side is gone.
 */
export function openChannel(
  socket: Duplex,
  handlers: { onMessage: (raw: unknown) => void; onViolation: (reason: string) => void; onClose?: () => void },
): Channel {
  const reader = new FrameReader();
  let open = true;
  socket.on('data', (chunk: Buffer) => {
    let messages: unknown[];
    try {
      messages = reader.push(chunk);
    } catch (err) {
      if (!open) return;
      open = false;
      handlers.onViolation((err as Error).message);
      return;
    }
    for (const message of messages) if (open) handlers.onMessage(message);
  });
  // A peer that went away mid-write is an ordinary close here, not an error of the process.
  socket.on('error', () => undefined);
  socket.once('close', () => {
    open = false;
    handlers.onClose?.();
  });
  return {
    get open() {
      return open && !socket.destroyed && socket.writable;
    },
    send(message) {
      if (open && !socket.destroyed && socket.writable) socket.write(encodeFrame(message));
    },
    close() {
      open = false;
      socket.destroy();
    },
  };
}
