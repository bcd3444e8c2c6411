/**
 * The stored text of an event given to the store as a line (NDJSON): the line itself with
 * `event.ingested` spliced in, instead of the parsed event serialised again.
 *
 * Only where the line cannot say something other than the parsed event: with two equal keys in
 * one object JSON.parse keeps the last, while other readers keep the first (SQLite's JSON
 * functions, which the event search uses, and some archive readers), so a line with a duplicate
 * key anywhere is serialised again from the parsed event, which is unambiguous. So is a line
 * with a `\u` escape (`"\u0065vent"` parses as `event`) and any layout not recognised here:
 * withIngested returns undefined and the caller falls back.
 *
 * The gateway hands the store parsed events, which are always serialised: checking a line for
 * duplicate keys costs about what serialising saves (docs/perf.md).
 */

/** What the splice needs to know of a line, measured before anything changed the parsed event. */
export interface KeyCounts {
  /** How many times `@timestamp` and `event` appear as keys anywhere in the text. */
  readonly timestamp: number;
  readonly event: number;
  /**
   * No `\u` escape, no space before a key's colon, and as many `":` in the text as keys in the
   * parsed event: every key appears once in its object. (A `\":` inside a string counts one
   * more and only costs a fallback.)
   */
  readonly spliceable: boolean;
}

const KEYS = /"(event|@timestamp)"\s*:/g;
const SPACED_COLON = /"\s+:/;

/** Keys of every object in a parsed JSON value. */
function keysIn(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const item of value) n += keysIn(item);
    return n;
  }
  for (const key in value) n += 1 + keysIn((value as Record<string, unknown>)[key]);
  return n;
}

/** Occurrences of `":` in the text. */
function colons(text: string): number {
  let n = 0;
  for (let at = text.indexOf('":'); at !== -1; at = text.indexOf('":', at + 2)) n++;
  return n;
}

/** `parsed`: JSON.parse of `text`, before anything changed it. */
export function keyCounts(text: string, parsed: unknown): KeyCounts {
  let timestamp = 0;
  let event = 0;
  KEYS.lastIndex = 0;
  for (let m = KEYS.exec(text); m !== null; m = KEYS.exec(text)) {
    if (m[1] === 'event') event++;
    else timestamp++;
  }
  const spliceable = !text.includes('\\u') && !SPACED_COLON.test(text) && colons(text) === keysIn(parsed);
  return { timestamp, event, spliceable };
}

const LINE_START = '{"@timestamp":"';
const EVENT_START = '","event":{';

/**
 * The text with `"ingested":"..."` spliced in at the start of its `event` object. The agent
 * writes every line as `{"@timestamp":"...","event":{...`, so the place is known without
 * searching; `meta` (the parsed `event` object) must not have an `ingested` of its own.
 */
export function withIngested(text: string, meta: Record<string, unknown>, counts: KeyCounts, timestamp: string, ingestedIso: string): string | undefined {
  if (Object.hasOwn(meta, 'ingested') || !counts.spliceable || counts.event !== 1 || counts.timestamp !== 1 || !text.startsWith(LINE_START)) return undefined;
  const at = LINE_START.length + timestamp.length;
  if (!text.startsWith(EVENT_START, at)) return undefined;
  const open = at + EVENT_START.length - 1;
  let next = open + 1;
  while (/\s/.test(text.charAt(next))) next++;
  const comma = text.charCodeAt(next) === 0x7d /* } */ ? '' : ',';
  return `${text.slice(0, open + 1)}"ingested":"${ingestedIso}"${comma}${text.slice(open + 1)}`;
}
