/**
 * A batch from an agent made ready for the store: its NDJSON split into lines, secrets redacted,
 * each line parsed and checked against the event schema and what the store needs, the agent id
 * set from the certificate, the CMDB's metadata attached, and each event turned into a row.
 * Pure code, run on the ingest worker (./worker.ts) so that the main thread keeps the sockets and
 * the database.
 */
import { gunzipSync } from 'node:zlib';
import { checkEvent } from '../../common/events/index.js';
import { HadesError, type ErrorCode } from '../../common/errors.js';
import { redactSecrets } from '../../common/redact.js';
import { splicedText } from '../store/line.js';
import { storeProblem, toRow, type Row } from '../store/row.js';

/** Most events in one batch. */
export const MAX_BATCH_EVENTS = 20_000;
/**
 * Most bytes of NDJSON in one batch once decompressed: a gRPC message's limit
 * (MAX_MESSAGE_BYTES in runtime/gateway-proto.ts, which this thread does not load), so that a
 * batch the agent compressed itself is held to what gRPC holds the others to.
 */
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * Most bytes of one event's JSON line. The largest events an agent writes are execs: the
 * arguments and command line of the process and of its parent (and of a ptrace or kill
 * target), each at most 64 KiB (driver.argv_max is at most 32 KiB; the agent completes a cut
 * argv from /proc/PID/cmdline, up to 64 KiB): 384 KiB, 2.3 MiB should every byte be one JSON
 * escapes in six. An event beyond this one is none an agent wrote, and it is refused (counted as
 * server_rejected_events) before it is parsed: the schema bounds each string, not the number of
 * elements of a list, and a few events of megabytes would make every search page of them huge.
 */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/** Why a whole batch is refused: a permanent Nack. */
export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * A batch's NDJSON as the agent sent it: the bytes themselves (`inflated` undefined), or their
 * gzip (one or more members), which must inflate to exactly `inflated` bytes (the batch's
 * ndjson_size), at most MAX_BATCH_BYTES: the room made for the batch before it was inflated
 * holds, whatever the gzip says. A refusal when that cannot be done.
 */
export function batchBytes(data: Uint8Array, inflated?: number): Uint8Array | Refusal {
  if (inflated === undefined) return data;
  if (inflated > MAX_BATCH_BYTES) {
    return { code: 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE', message: `ndjson_size ${inflated} is more than the ${MAX_BATCH_BYTES} bytes a batch may inflate to` };
  }
  let lines: Buffer;
  try {
    lines = gunzipSync(data, { maxOutputLength: Math.max(1, inflated) });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE') return { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: `ndjson_gzip inflates to more than its ndjson_size (${inflated} bytes)` };
    return { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: `ndjson_gzip is not gzip data: ${e.message}` };
  }
  if (lines.byteLength !== inflated) {
    return { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: `ndjson_gzip inflates to ${lines.byteLength} bytes, not its ndjson_size (${inflated})` };
  }
  return lines;
}

export interface PreparedBatch {
  /** Lines that are not valid events, left out. */
  readonly rejected: number;
  /** Why the first rejected line was (its line number in the batch, and the first problem), when one was. */
  readonly rejectedFirst?: string;
  /** Set when the whole batch is refused (too large, or not one valid event): a permanent Nack. */
  readonly refused?: Refusal;
  /** The valid events as rows, in order. */
  readonly rows: Row[];
  /** The same events parsed (what detection reads), in the same order. */
  readonly events: Record<string, unknown>[];
}

/**
 * `cmdb`: the host's metadata from the CMDB, or undefined (then whatever an agent put in
 * `hades.cmdb` goes: it is the server's to set). `now`: the time to stamp as `event.ingested`.
 */
export function prepareBatch(agentId: string, text: string, cmdb: object | undefined, now: number): PreparedBatch {
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (lines.length > MAX_BATCH_EVENTS) {
    return { rejected: 0, refused: { code: 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE', message: `batch of ${lines.length} events; at most ${MAX_BATCH_EVENTS}` }, rows: [], events: [] };
  }
  const events: Record<string, unknown>[] = [];
  // The stored copy of each event, spliced into its line where that is safe (../store/line.ts).
  const stored: (string | undefined)[] = [];
  const ingestedIso = new Date(now).toISOString();
  const server = { agentId, cmdb: cmdb === undefined ? null : JSON.stringify(cmdb) };
  let rejected = 0;
  let rejectedFirst: string | undefined;
  const reject = (n: number, why: () => string) => {
    rejected++;
    rejectedFirst ??= `line ${n + 1}: ${why()}`;
  };
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    // A UTF-16 unit is at most 3 bytes of UTF-8: only a long line is measured.
    if (raw.length > MAX_EVENT_BYTES / 3) {
      const bytes = Buffer.byteLength(raw);
      if (bytes > MAX_EVENT_BYTES) {
        reject(n, () => `the event is ${bytes} bytes of JSON, more than the ${MAX_EVENT_BYTES} an event may be`);
        continue;
      }
    }
    // Secrets on command lines (bearer tokens, Hades' own tokens) are not stored.
    const line = redactSecrets(raw);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      reject(n, () => 'not JSON');
      continue;
    }
    // The schema, and what the store needs of the columns (an empty event.id passes the schema).
    const check = checkEvent(value);
    if (!check.ok) {
      reject(n, () => check.problems.slice(0, 1).map((p) => `${p.path}: ${p.message}`).join(''));
      continue;
    }
    const problem = storeProblem(value as Record<string, unknown>);
    if (problem !== undefined) {
      reject(n, () => problem);
      continue;
    }
    const event = value as Record<string, unknown>;
    // Before the event changes below: the splice checks the line against the event it parses to.
    stored.push(splicedText(line, event, ingestedIso, server));
    // The agent is who its certificate says, whatever the event claims.
    event['agent'] = { ...(event['agent'] as Record<string, unknown> | undefined), id: agentId };
    const hades = event['hades'] as Record<string, unknown> | undefined;
    if (cmdb !== undefined) event['hades'] = { ...hades, cmdb };
    else if (hades !== undefined && 'cmdb' in hades) delete hades['cmdb'];
    events.push(event);
  }
  if (lines.length > 0 && events.length === 0) {
    return { rejected, ...(rejectedFirst === undefined ? {} : { rejectedFirst }), refused: { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: `none of the ${lines.length} lines is a valid event (${rejectedFirst ?? 'empty'})` }, rows: [], events };
  }
  const rows = new Array<Row>(events.length);
  try {
    for (let i = 0; i < events.length; i++) rows[i] = toRow(events[i], i, agentId, now, ingestedIso, stored[i]);
  } catch (error) {
    // Every event passed storeProblem, which checks what toRow needs: this is a bug.
    throw new HadesError('HADES_ERR_INTERNAL', `a checked event could not be made a row: ${(error as Error).message}`, { cause: error });
  }
  return { rejected, ...(rejectedFirst === undefined ? {} : { rejectedFirst }), rows, events };
}
