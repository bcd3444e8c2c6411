/**
 * An HTTP answer's body gathered up to a size. Kept whole, an endless answer (another service at
 * the address asked, or someone in the middle) grew one string until V8 refused it, and the
 * RangeError thrown from the 'data' handler ended the process: past `maxBytes` reading stops and
 * the request is destroyed with the error `tooLarge` makes, which the request's 'error' handler
 * reports.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';

/** Calls `done` with the body as text at its end; nothing when cut short (the request's error says why). */
export function gatherAnswer(req: ClientRequest, response: IncomingMessage, maxBytes: number, tooLarge: () => Error, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      response.removeAllListeners('data');
      chunks.length = 0;
      req.destroy(tooLarge());
      return;
    }
    chunks.push(chunk);
  });
  // Cut short (destroyed above, or the connection lost): the request's error says why.
  response.on('error', () => undefined);
  response.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
}
