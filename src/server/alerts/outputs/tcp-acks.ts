/**
 * What the peer's TCP has acknowledged of a connection: the bytes written to it that the peer has
 * not acknowledged yet, read from the kernel's table of sockets (`/proc/net/tcp` and
 * `/proc/net/tcp6`, column `tx_queue`: for a connected socket, the bytes written and not yet
 * acknowledged, including those still waiting in the send buffer). Node gives no
 * getsockopt(TCP_INFO) nor TCP_USER_TIMEOUT; this table is what the kernel tells a process about
 * its connections without native code.
 *
 * Reading it is not cheap: the kernel writes a line for every socket of the host (a server has
 * one per agent), about 4 µs each, so some 8 ms of CPU for a whole table of 2,000 sockets. That
 * time is spent in the read calls, on a thread of libuv's pool; the main thread only searches the
 * bytes for the connection's line. The table is read in chunks and the reading stops at the
 * connection's line: 5 ms on average with 2,000 sockets, under 0.3 ms of it on the main thread.
 * Callers read it rarely (syslog.ts).
 */
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import net from 'node:net';

/** `gone`: the connection is not in the table (closed, or missed by a reading that raced with other sockets); `unknown`: the table cannot be read. */
export type Unacknowledged = number | 'gone' | 'unknown';

/** The ends of a connection as net.Socket gives them. */
export interface ConnectionEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** Bytes read from the table at a time. */
const CHUNK_BYTES = 64 * 1024;
/** What follows the two ends on a line, tx_queue included: "01 0000A000:". */
const TX_FIELD_BYTES = 12;

/**
 * The bytes of a connection its peer has not acknowledged yet (see the module's comment).
 * `file`: the table to read instead of the kernel's (tests).
 */
export async function unacknowledgedBytes(socket: ConnectionEnds, file?: string): Promise<Unacknowledged> {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) return 'gone';
  const local = procEnd(localAddress, localPort);
  const remote = procEnd(remoteAddress, remotePort);
  if (local === undefined || remote === undefined) return 'unknown';
  const needle = Buffer.from(` ${local} ${remote} `, 'latin1');
  let handle;
  try {
    handle = await open(file ?? (net.isIPv6(localAddress) ? '/proc/net/tcp6' : '/proc/net/tcp'), 'r');
  } catch {
    return 'unknown';
  }
  try {
    // A line cut between two chunks is found whole: the end of a chunk is kept before the next one.
    const keep = needle.length + TX_FIELD_BYTES;
    const buffer = Buffer.allocUnsafe(keep + CHUNK_BYTES);
    let kept = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, kept, CHUNK_BYTES, null);
      const filled = kept + bytesRead;
      const at = buffer.subarray(0, filled).indexOf(needle);
      if (at >= 0 && (at + keep <= filled || bytesRead === 0)) return txQueue(buffer.subarray(at + needle.length, Math.min(filled, at + keep)));
      if (bytesRead === 0) return 'gone';
      kept = Math.min(keep, filled);
      buffer.copy(buffer, 0, filled - kept, filled);
    }
  } catch {
    return 'unknown';
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The tx_queue of the line of `local` and `remote` (procEnd's form) in a /proc/net/tcp table. */
export function unacknowledgedIn(table: string, local: string, remote: string): Unacknowledged {
  // "   0: 0100007F:9C40 0100007F:0202 01 0000A000:00000000 ...": sl, local and remote ends,
  // state, tx_queue:rx_queue. Searched for rather than split: a server's table has a line for
  // each agent's connection.
  const needle = ` ${local} ${remote} `;
  const at = table.indexOf(needle);
  if (at < 0) return 'gone';
  return txQueue(Buffer.from(table.slice(at + needle.length, at + needle.length + TX_FIELD_BYTES), 'latin1'));
}

/** tx_queue from what follows the two ends of a line: "01 0000A000". */
function txQueue(field: Buffer): Unacknowledged {
  const tx = /^[0-9A-F]{2} ([0-9A-F]{8})/i.exec(field.toString('latin1'));
  return tx ? parseInt(tx[1]!, 16) : 'unknown';
}

/**
 * An address and port as /proc/net/tcp writes them: each 32-bit word of the address in hex, in
 * the host's byte order, then the port in hex (`0100007F:0202` is 127.0.0.1:514 on x86).
 */
export function procEnd(address: string, port: number, order: 'LE' | 'BE' = endianness()): string | undefined {
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  let words = '';
  for (let i = 0; i < bytes.length; i += 4) words += (order === 'LE' ? bytes.readUInt32LE(i) : bytes.readUInt32BE(i)).toString(16).toUpperCase().padStart(8, '0');
  return `${words}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The 4 or 16 bytes of an IP address (an IPv6 zone is ignored), or undefined. */
function addressBytes(text: string): Buffer | undefined {
  const address = text.replace(/%.*$/, '');
  const family = net.isIP(address);
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  if (family !== 6) return undefined;
  // An IPv4 tail (::ffff:10.0.0.1) is two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const plain = dotted ? address.slice(0, dotted.index) + [((+dotted[1]! << 8) | +dotted[2]!).toString(16), ((+dotted[3]! << 8) | +dotted[4]!).toString(16)].join(':') : address;
  const [head = '', tail] = plain.split('::');
  const part = (s: string) => (s === '' ? [] : s.split(':'));
  const groups = tail === undefined ? part(head) : [...part(head), ...Array<string>(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)];
  if (groups.length !== 8) return undefined;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}
