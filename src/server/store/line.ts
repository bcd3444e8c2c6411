/**
 * The stored text of an event that came as a line of NDJSON: the line itself with what the server
 * adds spliced in (`event.ingested`, and on the gateway's path `hades.cmdb`), instead of the
 * parsed event serialised again. Serialising a 1.5 KB event costs about three times what the
 * checks below cost (docs/perf.md, "The session of 2026-12-02 06:40 UTC").
 *
 * Only where the line cannot say something other than the parsed event: with two equal keys in
 * one object JSON.parse keeps the last, while other readers keep the first (SQLite's JSON
 * functions, which the event search uses, and some archive readers), so a line with a duplicate
 * key anywhere is serialised again from the parsed event, which is unambiguous. So is a line with
 * a `\u` escape (`"\u0065vent"` parses as `event`), with whitespace before a key's colon, with a
 * number other than a plain integer of at most 15 digits (readers round long spellings
 * differently), with a carriage return (a line break to some archive readers), with a value the
 * server replaces (an agent id other than the certificate's, a `hades.cmdb` of the agent's) and
 * any layout not recognised here: splicedText returns undefined and the caller serialises.
 */

/** A JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Keys of every object in a parsed JSON value (its own keys: Object.keys, so that nothing
 * enumerable on a prototype could make the count reach the text's with keys missing), or -1 when
 * an array holds a number, whose spelling unambiguous does not look at.
 */
function keysIn(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'number') return -1;
      const k = keysIn(item);
      if (k < 0) return -1;
      n += k;
    }
    return n;
  }
  const keys = Object.keys(value);
  n = keys.length;
  for (let i = 0; i < keys.length; i++) {
    const k = keysIn((value as Record<string, unknown>)[keys[i]!]);
    if (k < 0) return -1;
    n += k;
  }
  return n;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Whether the number written at `at` is a plain integer of at most 15 digits (not `-0`), which
 * every reader reads as the same number. Others do not: JSON.parse rounds 9007199254740993 to
 * ...992 where SQLite and Python keep it whole, SQLite reads 1233.99999999999988632 as
 * 1233.9999999999998 where JSON.parse reads 1234, and 1.0 is a real to SQLite.
 */
function plainInteger(text: string, at: number): boolean {
  let i = at;
  if (text.charCodeAt(i) === 0x2d /* - */) i++;
  const first = i;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  const digits = i - first;
  if (digits === 0 || digits > 15) return false;
  const next = text.charCodeAt(i);
  if (next === 0x2e /* . */ || next === 0x65 /* e */ || next === 0x45 /* E */) return false;
  return !(first > at && digits === 1 && text.charCodeAt(first) === 0x30);
}

/**
 * Whether every reader reads the text as JSON.parse read it (unambiguous): every key appears once in its
 * object, every number is a plain integer (plainInteger), and no carriage return is in it.
 *
 * Keys: as many `":` in the text as keys in the parsed value, no `\u` escape, and no colon after
 * whitespace (which a spaced key would end in, uncounted). An escaped quote before a colon
 * (`\":`, inside a string) is not counted. A duplicate key makes the parsed value have fewer keys
 * than the text; a string that begins with a colon (an IPv6 address such as `"::1"`) makes the
 * text have more, and only costs a fallback: neither can hide the other, since both only push
 * one way. Numbers: a number in an object follows its key's `":`
 * (and whitespace), and one in an array makes keysIn refuse. A carriage return is
 * whitespace to JSON, which JSON.stringify never writes, but a line break to Node's readline,
 * Python's text files and Hadoop's line reader (which Spark and Athena read the archive with): the
 * line would be cut in two, or three with an object of the agent's in the middle.
 * `parsed`: JSON.parse of `text`, before anything changed it.
 */
export function unambiguous(text: string, parsed: unknown): boolean {
  if (text.includes('\\u') || text.includes('\r')) return false;
  let colons = 0;
  // One character searched for (the fastest indexOf), the ones around it looked at.
  for (let at = text.indexOf(':'); at !== -1; at = text.indexOf(':', at + 1)) {
    const before = text.charCodeAt(at - 1);
    if (before === 0x22 /* " */) {
      // A quote after an odd number of backslashes is escaped, inside a string: not a key's end.
      let slashes = 0;
      while (text.charCodeAt(at - 2 - slashes) === 0x5c /* \ */) slashes++;
      if (slashes % 2 === 1) continue;
      colons++;
      let next = at + 1;
      while (isSpace(text.charCodeAt(next))) next++;
      const after = text.charCodeAt(next);
      if (((after >= 0x30 && after <= 0x39) || after === 0x2d) && !plainInteger(text, next)) return false;
    } else if (isSpace(before)) return false;
  }
  return colons === keysIn(parsed);
}

const LINE_START = '{"@timestamp":"';
const EVENT_START = '","event":{';

/** What the server sets in the stored copy besides `event.ingested`. */
export interface ServerFields {
  /** The agent's id from its certificate: set as `agent.id` when the line has none; a line with another is serialised. */
  readonly agentId?: string;
  /**
   * The host's CMDB metadata as JSON, to set as `hades.cmdb`; null when there is none (then the
   * line must have no `hades.cmdb`, which is the server's to set). Undefined: `hades` is left as it is.
   */
  readonly cmdb?: string | null;
}

/**
 * The line with `"ingested":"..."` spliced in at the start of its `event` object (and `hades.cmdb`
 * when asked), or undefined when it must be serialised again instead. The agent writes every line
 * as `{"@timestamp":"...","event":{...`, so the place is known without searching. `parsed`:
 * JSON.parse of `text`, before anything changed it.
 */
export function splicedText(text: string, parsed: Record<string, unknown>, ingestedIso: string, server: ServerFields = {}): string | undefined {
  const meta = parsed['event'];
  const timestamp = parsed['@timestamp'];
  if (!isObject(meta) || typeof timestamp !== 'string' || Object.hasOwn(meta, 'ingested')) return undefined;
  const agent = parsed['agent'];
  // The agent does not name itself in its events: the server adds the certificate's id. A line
  // that names an agent names this one, or it is serialised.
  if (server.agentId !== undefined && agent !== undefined && (!isObject(agent) || (Object.hasOwn(agent, 'id') && agent['id'] !== server.agentId))) return undefined;
  const hades = parsed['hades'];
  if (server.cmdb !== undefined && hades !== undefined && (!isObject(hades) || Object.hasOwn(hades, 'cmdb'))) return undefined;
  const at = LINE_START.length + timestamp.length;
  if (!text.startsWith(LINE_START) || !text.startsWith(timestamp, LINE_START.length) || !text.startsWith(EVENT_START, at) || !text.endsWith('}')) return undefined;
  if (!unambiguous(text, parsed)) return undefined;
  const open = at + EVENT_START.length - 1;
  let out: string | undefined = `${text.slice(0, open + 1)}"ingested":"${ingestedIso}"${afterOpen(text, open + 1)}${text.slice(open + 1)}`;
  if (server.agentId !== undefined && !(isObject(agent) && Object.hasOwn(agent, 'id'))) out = withMember(out, 'agent', agent !== undefined, `"id":${JSON.stringify(server.agentId)}`);
  if (out !== undefined && typeof server.cmdb === 'string') out = withMember(out, 'hades', hades !== undefined, `"cmdb":${server.cmdb}`);
  return out;
}

/**
 * The text with `member` put first in its top-level object `key` (`exists`), or in a new one
 * at the end of the line; undefined when the place is not certain. Keys are unique and none has
 * whitespace around its colon (unambiguous): the one `"key":` of the text is the top level's.
 */
function withMember(text: string, key: string, exists: boolean, member: string): string | undefined {
  if (!exists) return `${text.slice(0, -1)},"${key}":{${member}}}`;
  const name = `"${key}":`;
  const at = text.indexOf(name);
  if (at === -1 || text.indexOf(name, at + 1) !== -1 || text.charCodeAt(at + name.length) !== 0x7b /* { */) return undefined;
  const brace = at + name.length;
  return `${text.slice(0, brace + 1)}${member}${afterOpen(text, brace + 1)}${text.slice(brace + 1)}`;
}

/** The separator after a member put first in an object whose text goes on at `next`: none when the object was empty. */
function afterOpen(text: string, next: number): string {
  while (isSpace(text.charCodeAt(next))) next++;
  return text.charCodeAt(next) === 0x7d /* } */ ? '' : ',';
}
