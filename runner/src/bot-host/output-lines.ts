import { StringDecoder } from 'node:string_decoder';

/** A partial line longer than this is passed on without waiting for its newline. */
export const OUTPUT_LINE_CAP = 64 * 1024;

/**
 * Joins the raw writes of one stream (bot code's `process.stdout.write`) into lines before they
 * are redacted: a value written in two pieces (`"pass"`, then `"word\n"`) reaches the redactor as
 * one line, not as two halves neither of which it recognises. A line is passed on at its newline,
 * when the partial line reaches the cap (64 KiB: memory stays bounded, whatever the bot writes),
 * and at `flush` (the end of the run). Multi-byte characters split across writes are kept whole.
 */
export class OutputLines {
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly cap = OUTPUT_LINE_CAP,
  ) {}

  write(chunk: string | Uint8Array): void {
    const added = typeof chunk === 'string' ? chunk : this.decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    // Only the new text can hold the next newline: a bot writing a character at a time costs linear time.
    let newline = added.indexOf('\n');
    if (newline >= 0) newline += this.partial.length;
    let text = this.partial + added;
    while (newline >= 0) {
      this.line(text.slice(0, newline));
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    while (text.length >= this.cap) {
      // Not between the halves of a surrogate pair.
      const high = text.charCodeAt(this.cap - 1);
      const cut = high >= 0xd800 && high <= 0xdbff ? this.cap - 1 : this.cap;
      this.line(text.slice(0, cut));
      text = text.slice(cut);
    }
    this.partial = text;
  }

  /** Passes on what is left of the last line (and of a character cut at the stream's end). */
  flush(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    this.line(rest);
  }

  private line(text: string): void {
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (line !== '') this.onLine(line);
  }
}
