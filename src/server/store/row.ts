/**
 * An event as a row of the store's `events` table: the columns read from the parsed event and
 * the stored JSON (the event plus `event.ingested`). Pure code without the database, so that the
 * server's ingest worker (../ingest/worker.ts) builds rows off the main thread; the store
 * (./events.ts) inserts them.
 */
import { HadesError } from '../../common/errors.js';
import { timestampMs } from '../../common/events/fields.js';
import { isObject, splicedText } from './line.js';

/**
 * One row of the `events` table, in the INSERT's column order: event id, time, ingested, agent id,
 * host, action, executable, process name, user name, destination ip and port, source ip, file
 * path, DNS name, and the stored JSON.
 */
export type Row = [string, number, number, string, string, string, string | null, string | null, string | null, string | null, number | null, string | null, string | null, string | null, string];

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function child(parent: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const value = parent[key];
  return isObject(value) ? value : undefined;
}

function invalid(index: number, message: string, cause?: unknown): HadesError {
  return new HadesError('HADES_ERR_EVENT_INVALID', `event ${index} of the batch: ${message}`, cause === undefined ? {} : { cause });
}

/** What the store's required columns hold, read from a parsed event. */
interface KeyColumns {
  readonly meta: Record<string, unknown>;
  readonly id: string;
  readonly action: string;
  readonly time: number;
  readonly hostName: string;
}

/** The event's required columns, or what keeps the store from taking it (a message). */
function keyColumns(event: Record<string, unknown>): KeyColumns | string {
  const meta = child(event, 'event');
  if (meta === undefined) return 'no event object';
  const id = meta['id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) return 'event.id must be a non-empty string of at most 128 characters';
  const action = meta['action'];
  if (typeof action !== 'string' || action.length === 0) return 'event.action must be a non-empty string';
  const timestamp = event['@timestamp'];
  const time = typeof timestamp === 'string' ? timestampMs(timestamp) : NaN;
  if (!Number.isFinite(time)) return '@timestamp must be an ISO 8601 UTC time';
  const host = child(event, 'host');
  const hostName = host === undefined ? null : str(host['name']);
  if (hostName === null) return 'host.name must be a string';
  return { meta, id, action, time, hostName };
}

/**
 * What keeps the store from taking an event (a parsed one), or undefined: its id, action, time
 * and host name, which are columns. The gateway checks every line with it as well as the event
 * schema, so that a batch is never refused whole for one line the store would not take.
 */
export function storeProblem(event: Record<string, unknown>): string | undefined {
  const columns = keyColumns(event);
  return typeof columns === 'string' ? columns : undefined;
}

/**
 * The columns of one event. The stored JSON is the event plus `event.ingested`: `stored` when the
 * caller has made it (the gateway's path splices it into the agent's line: ./line.ts), else
 * spliced into a line given as text when that is safe, else serialised again (from a copy of a
 * caller's object).
 */
export function toRow(input: unknown, index: number, agentId: string, ingestedMs: number, ingestedIso: string, stored?: string): Row {
  let event: Record<string, unknown>;
  const line = typeof input === 'string' ? input : undefined;
  if (line !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw invalid(index, `not JSON (${(error as Error).message})`, error);
    }
    if (!isObject(parsed)) throw invalid(index, 'not a JSON object');
    event = parsed;
  } else {
    if (!isObject(input)) throw invalid(index, 'not an object');
    event = input;
  }
  const columns = keyColumns(event);
  if (typeof columns === 'string') throw invalid(index, columns);
  const { meta, id, action, time, hostName } = columns;

  const process = child(event, 'process');
  const user = child(event, 'user');
  const destination = child(event, 'destination');
  const source = child(event, 'source');
  const file = child(event, 'file');
  const question = child(event, 'dns') === undefined ? undefined : child(child(event, 'dns') as Record<string, unknown>, 'question');
  let userName = user === undefined ? null : str(user['name']);
  if (userName === null && process !== undefined) {
    const processUser = child(process, 'user');
    if (processUser !== undefined) userName = str(processUser['name']);
  }
  const port = destination === undefined ? undefined : destination['port'];
  return [
    id,
    time,
    ingestedMs,
    agentId,
    hostName,
    action,
    process === undefined ? null : str(process['executable']),
    process === undefined ? null : str(process['name']),
    userName,
    destination === undefined ? null : str(destination['ip']),
    typeof port === 'number' && Number.isInteger(port) ? port : null,
    source === undefined ? null : str(source['ip']),
    file === undefined ? null : str(file['path']),
    question === undefined ? null : str(question['name']),
    // The parsed event is never changed here (the fallback serialises a copy), so the line is
    // checked against it as it was parsed.
    stored ?? (line === undefined ? undefined : splicedText(line, event, ingestedIso)) ?? JSON.stringify({ ...event, event: { ...meta, ingested: ingestedIso } }),
  ];
}

