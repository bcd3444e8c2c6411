/**
 * The JSON text an agent sent, kept as the stored copy of its event: what the server adds (the
 * agent's id, CMDB metadata, the ingestion time) is spliced into the text instead of serialising
 * the parsed event again, which cost a fifth of ingestion.
 *
 * A splice is only made where the text cannot say something other than the parsed event:
 * the member it extends must be the only key of that name in the whole text, and the text must
 * hold no `\u` escape (`"\u0061gent"` parses as a second `agent` key). With duplicate keys
 * JSON.parse keeps the last while other readers of the archive may keep the first, so such a
 * text is serialised again from the parsed event, as is any layout these functions do not
 * recognise: they return undefined and the caller falls back.
 */

/** How many times each key the server splices into appears as a key (not as a value) in the text. */
export interface KeyCounts {
  readonly timestamp: number;
  readonly agent: number;
  readonly hades: number;
  readonly event: number;
  /** The text holds a `\u` escape: no splice is safe. */
  readonly escaped: boolean;
}

const KEYS = /"(agent|hades|event|@timestamp)"\s*:/g;

export function keyCounts(text: string): KeyCounts {
  let timestamp = 0;
  let agent = 0;
  let hades = 0;
  let event = 0;
  KEYS.lastIndex = 0;
  for (let m = KEYS.exec(text); m !== null; m = KEYS.exec(text)) {
    if (m[1] === 'agent') agent++;
    else if (m[1] === 'hades') hades++;
    else if (m[1] === 'event') event++;
    else timestamp++;
  }
  return { timestamp, agent, hades, event, escaped: text.includes('\\u') };
}

/** An event's text as received, while it still says exactly what the parsed event says. */
export interface EventText {
  readonly text: string;
  readonly counts: KeyCounts;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Inserts `"key":value` as the first member of the object that starts at `open` (its `{`). */
function insertFirst(text: string, open: number, member: string): string {
  let next = open + 1;
  while (text.charCodeAt(next) === 0x20 || text.charCodeAt(next) === 0x0a || text.charCodeAt(next) === 0x0d || text.charCodeAt(next) === 0x09) next++;
  const comma = text.charCodeAt(next) === 0x7d /* } */ ? '' : ',';
  return `${text.slice(0, open + 1)}${member}${comma}${text.slice(open + 1)}`;
}

/**
 * The text with `agent.id` set to `agentId`, or undefined when that cannot be done by a splice.
 * Unchanged when the event already says this id; a different id is not spliced over.
 */
export function withAgentId(text: string, event: Record<string, unknown>, counts: KeyCounts, agentId: string): string | undefined {
  const agent = event['agent'];
  if (!isObject(agent) || counts.escaped || counts.agent !== 1) return undefined;
  if (agent['id'] === agentId) return text;
  if (agent['id'] !== undefined) return undefined;
  KEYS.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = KEYS.exec(text)) !== null && m[1] !== 'agent');
  if (m === null) return undefined;
  let open = m.index + m[0].length;
  while (text.charCodeAt(open) !== 0x7b /* { */) {
    if (open >= text.length || text.charCodeAt(open) > 0x20) return undefined;
    open++;
  }
  return insertFirst(text, open, `"id":${JSON.stringify(agentId)}`);
}

/**
 * The text with `hades.cmdb` set to `cmdb`: only when `hades` is the last member of the event,
 * a non-empty object without a `cmdb` of its own, and the text ends with the two braces that
 * close it and the event.
 */
export function withCmdb(text: string, event: Record<string, unknown>, counts: KeyCounts, cmdb: unknown): string | undefined {
  const hades = event['hades'];
  if (!isObject(hades) || counts.escaped || counts.hades !== 1 || Object.hasOwn(hades, 'cmdb')) return undefined;
  const keys = Object.keys(event);
  if (keys[keys.length - 1] !== 'hades' || Object.keys(hades).length === 0 || !text.endsWith('}}')) return undefined;
  return `${text.slice(0, -2)},"cmdb":${JSON.stringify(cmdb)}}}`;
}

const LINE_START = '{"@timestamp":"';
const EVENT_START = '","event":{';

/**
 * The text with `"ingested":"..."` spliced in at the start of its `event` object. The agent
 * writes every line as `{"@timestamp":"...","event":{...`, so the place is known without
 * searching; `meta` (the parsed `event` object) must not have an `ingested` of its own.
 */
export function withIngested(text: string, meta: Record<string, unknown>, counts: KeyCounts, timestamp: string, ingestedIso: string): string | undefined {
  if (Object.hasOwn(meta, 'ingested') || counts.escaped || counts.event !== 1 || counts.timestamp !== 1 || !text.startsWith(LINE_START)) return undefined;
  const at = LINE_START.length + timestamp.length;
  if (!text.startsWith(EVENT_START, at)) return undefined;
  return insertFirst(text, at + EVENT_START.length - 1, `"ingested":"${ingestedIso}"`);
}
