/**
 * Lines of a stream, each at most `maxBytes` long: a longer one is skipped as it streams by (its
 * bytes are counted, not kept) and given as `{ tooLong }`. Node's readline keeps a line whole
 * however long it grows, and one longer than a string can be (about 512 MiB) ends the process
 * with an error thrown outside any caller's reach. Lines end at `\n`, with a `\r` before it
 * dropped (CRLF files); the text is UTF-8, decoded per line (a character split between two reads
 * stays whole).
 */
export type BoundedLine = string | { readonly tooLong: number };

export async function* boundedLines(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<BoundedLine> {
  let parts: Buffer[] = [];
  let size = 0;
  /** Bytes of the line being skipped, or -1 when none is. */
  let skipped = -1;
  const line = (): string => {
    const text = Buffer.concat(parts, size).toString('utf8');
    parts = [];
    size = 0;
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  };
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start < buffer.length) {
      const newline = buffer.indexOf(10, start);
      const end = newline < 0 ? buffer.length : newline;
      const piece = end - start;
      if (skipped >= 0) skipped += piece;
      else if (size + piece > maxBytes) {
        skipped = size + piece;
        parts = [];
        size = 0;
      } else if (piece > 0) {
        parts.push(buffer.subarray(start, end));
        size += piece;
      }
      if (newline < 0) break;
      if (skipped >= 0) {
        yield { tooLong: skipped };
        skipped = -1;
      } else yield line();
      start = newline + 1;
    }
  }
  if (skipped >= 0) yield { tooLong: skipped };
  else if (size > 0) yield line();
}
