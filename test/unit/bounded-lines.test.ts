import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { boundedLines, type BoundedLine } from '../../src/runtime/bounded-lines.js';

async function read(chunks: (Buffer | string)[], max: number): Promise<BoundedLine[]> {
  const out: BoundedLine[] = [];
  for await (const line of boundedLines(Readable.from(chunks), max)) out.push(line);
  return out;
}

describe('boundedLines', () => {
  it('splits at newlines across reads, drops a CR before one, and gives a last line without one', async () => {
    assert.deepEqual(await read(['a\nb', 'c\r\n\n', 'd'], 100), ['a', 'bc', '', 'd']);
    assert.deepEqual(await read(['x\n'], 100), ['x']);
    assert.deepEqual(await read([], 100), []);
  });

  it('keeps a character whose bytes two reads split', async () => {
    const bytes = Buffer.from('é€\n', 'utf8');
    assert.deepEqual(await read([bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3)], 100), ['é€']);
  });

  it('skips a line longer than the bound, counting its bytes, and reads on', async () => {
    assert.deepEqual(await read(['ok\n', 'x'.repeat(6), 'y'.repeat(6), '\nnext\n'], 10), ['ok', { tooLong: 12 }, 'next']);
    assert.deepEqual(await read(['z'.repeat(11)], 10), [{ tooLong: 11 }], 'at the end, without a newline');
    assert.deepEqual(await read(['z'.repeat(10), '\n'], 10), ['z'.repeat(10)], 'the bound itself is kept');
  });
});
