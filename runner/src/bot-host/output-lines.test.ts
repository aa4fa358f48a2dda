import { OutputLines } from './output-lines';

function collect(cap?: number) {
  const lines: string[] = [];
  return { lines, out: new OutputLines((line) => lines.push(line), cap) };
}

describe('OutputLines', () => {
  it('joins a line written in pieces, so a value split across writes arrives whole', () => {
    const { lines, out } = collect();
    out.write('raw pass');
    out.write(Buffer.from('word'));
    expect(lines).toEqual([]);
    out.write('\nnext');
    expect(lines).toEqual(['raw password']);
    out.flush();
    expect(lines).toEqual(['raw password', 'next']);
  });

  it('splits a write of several lines, drops empty ones and a trailing CR', () => {
    const { lines, out } = collect();
    out.write('a\r\n\nb\nc');
    out.flush();
    expect(lines).toEqual(['a', 'b', 'c']);
  });

  it('passes on a partial line at the cap, keeping memory bounded', () => {
    const { lines, out } = collect(10);
    for (let i = 0; i < 25; i++) out.write('x');
    expect(lines).toEqual(['x'.repeat(10), 'x'.repeat(10)]);
    out.flush();
    expect(lines[2]).toBe('x'.repeat(5));
  });

  it('keeps a multi-byte character split across writes whole', () => {
    const { lines, out } = collect();
    const bytes = Buffer.from('é\n');
    out.write(bytes.subarray(0, 1));
    out.write(bytes.subarray(1));
    expect(lines).toEqual(['é']);
  });
});
