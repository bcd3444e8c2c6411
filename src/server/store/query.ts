/**
 * The event store's query builder: turns an `EventQuery` into one parameterised SQL statement,
 * rejecting bad input with HADES_ERR_STORE_QUERY. Every search walks one index in time order
 * (an equality on an indexed column, else the time index) and tests its other terms on the rows
 * the walk yields, at most as many as the scan budget allows: no search reads the whole table. No value ever reaches the SQL text: field
 * names are looked up in a fixed table (indexed columns) or checked against a strict pattern
 * and passed as bound JSON paths.
 */
import { HadesError } from '../../common/errors.js';
import { addressForms } from '../../runtime/ip-address.js';
import { MAX_DATE_MS } from '../../common/time-bound.js';
import { fieldInfo, fieldPaths, suggest } from '../../rules/index.js';

export type FilterOp = 'eq' | 'prefix' | 'contains';

export interface FieldFilter {
  /** A dotted ECS field, e.g. `process.executable`, `process.args`, `hades.file.watch`. */
  readonly field: string;
  readonly op: FilterOp;
  readonly value: string;
}

export type TimeBound = Date | number;

export interface EventQuery {
  /** Inclusive lower bound on `@timestamp` (a Date or ms since the epoch). */
  readonly since?: TimeBound;
  /** Exclusive upper bound on `@timestamp`. */
  readonly until?: TimeBound;
  readonly host?: string;
  readonly action?: string | readonly string[];
  /** The agent that delivered the events (its enrolled id, not the events' `agent.id`). */
  readonly agentId?: string;
  readonly filters?: readonly FieldFilter[];
  /** Page size, 1 to 10,000; 100 by default. */
  readonly limit?: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
  /** `desc` (newest first, the default) or `asc`. */
  readonly order?: 'desc' | 'asc';
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;
export const MAX_FILTERS = 32;
export const MAX_ACTIONS = 64;
export const MAX_VALUE_LENGTH = 4096;
export const MAX_FIELD_LENGTH = 256;

/** The pattern every field path must match (lower-case ECS names, dotted). */
export const FIELD_PATH = /^[a-z@_][a-z0-9_]*(\.[a-z0-9_@]+)*$/;

interface IndexedField {
  readonly column: string;
  readonly integer?: boolean;
  /** The column has an index of its own (events.ts), which equality and prefix filters walk. */
  readonly index?: true;
}

/**
 * ECS fields kept in columns of their own (see the migration in events.ts). A filter on one of
 * these compares the column, never the JSON. `user.name` is the event's `user.name` or, when the
 * event has none, `process.user.name` (the user an event is about, as ECS `related.user`).
 */
export const INDEXED_FIELDS: Readonly<Record<string, IndexedField>> = Object.freeze({
  'event.id': { column: 'event_id', index: true },
  'event.action': { column: 'action', index: true },
  'host.name': { column: 'host', index: true },
  'process.executable': { column: 'executable', index: true },
  'process.name': { column: 'process_name' },
  'user.name': { column: 'user_name', index: true },
  'destination.ip': { column: 'destination_ip', index: true },
  'destination.port': { column: 'destination_port', integer: true },
  'source.ip': { column: 'source_ip' },
  'file.path': { column: 'file_path' },
  'dns.question.name': { column: 'dns_name' },
});

/** The position after a row, in the order of the query that returned it. */
export interface CursorPosition {
  readonly time: number;
  readonly id: number;
  readonly order: 'desc' | 'asc';
  /**
   * The time window of the search that issued the cursor (ms; null: unbounded), which its next
   * pages keep: a bound given as a duration (`since=24h`) read again at each page would move, and
   * the oldest events of the first page's window would fall out of the next. Absent from the
   * cursors of earlier versions, whose pages read the query's window again.
   */
  readonly window?: { readonly since: number | null; readonly until: number | null };
}

/** The statements of a search that walks one index. */
export interface SearchPlan {
  readonly sql: string;
  readonly params: readonly (string | number)[];
  /**
   * With terms the walked index does not serve: the rows the query examines at most, and the
   * statement that finds the last of them and the row after it (time and id). The query's
   * parameters with the last row to examine (`paramsUntil`): when there is a row after it, the
   * search stops there, and its next page goes on from it.
   */
  readonly scan?: { readonly rows: number; readonly sql: string; readonly params: readonly (string | number)[] };
  /** The parameters of `sql` when the walk stops at row `at` (inclusive); `params` are those without a stop. */
  readonly paramsUntil: (at: { readonly time: number; readonly id: number } | undefined) => readonly (string | number)[];
}

export interface BuiltQuery extends SearchPlan {
  readonly limit: number;
  readonly order: 'desc' | 'asc';
  /** The time window searched, for the cursors of the next pages. */
  readonly window: { readonly since: number | null; readonly until: number | null };
  /**
   * With several terms an index can walk, each, in the order of WALK_RANK (the plan above is the
   * first's): a statement that counts its rows in the window, up to `most` (`n`), and its plan.
   * The store walks the one with the fewest, counting each only up to the fewest so far (the
   * first up to PROBE_ROWS, or one more than the scan's rows when that is fewer).
   */
  readonly choices?: readonly { readonly probe: (most: number) => { readonly sql: string; readonly params: readonly (string | number)[] }; readonly plan: () => SearchPlan }[];
}

/**
 * A search walks one index in time order and tests its other terms on each row the walk yields:
 * it examines at most this many (row, filter on the JSON) pairs before it returns a page, so that
 * a search cannot hold the server (which stores the fleet's events on the same thread) for long.
 * Reading the JSON of a row and testing one filter costs 3-4 µs (measured on a store of 1.2
 * million events, docs/perf.md): 150-200 ms a page. Terms on columns alone (the indexed columns
 * the walk does not follow, process.name, any contains or prefix, the agent) read each row's
 * columns without its JSON, ROW_SCAN_COST of a pair: 200,000 rows, 180-210 ms.
 */
export const SCAN_BUDGET = 50_000;
/** What examining a row costs against SCAN_BUDGET when no term reads its JSON (its columns only), next to a filter on the JSON. */
export const ROW_SCAN_COST = 0.25;
/**
 * What the query returns of each match: its position, and the size of its JSON (read from the
 * record's header, not the JSON), by which the store cuts a page (PAGE_BYTES) before reading any.
 */
const PAGE_COLUMNS = 'id, time, octet_length(event) AS bytes';
/** Filters on fields that are not indexed, in one search. */
export const MAX_JSON_FILTERS = 8;

function bad(message: string, details?: Record<string, unknown>): HadesError {
  return new HadesError('HADES_ERR_STORE_QUERY', message, details === undefined ? {} : { details });
}

export function encodeCursor(position: CursorPosition): string {
  const window = position.window === undefined ? [] : [position.window.since, position.window.until];
  return Buffer.from(JSON.stringify([position.time, position.id, position.order === 'desc' ? 'd' : 'a', ...window])).toString('base64url');
}

export function decodeCursor(cursor: string): CursorPosition {
  const fail = (): HadesError => bad('cursor: not a cursor this store issued (pass the `next` of the previous page unchanged)');
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 128 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw fail();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw fail();
  }
  if (!Array.isArray(value) || (value.length !== 3 && value.length !== 5)) throw fail();
  const [time, id, order, since, until] = value as unknown[];
  if (!Number.isSafeInteger(time) || !Number.isSafeInteger(id) || (id as number) < 1 || (order !== 'd' && order !== 'a')) throw fail();
  const bound = (b: unknown) => b === null || (Number.isSafeInteger(b) && Math.abs(b as number) <= MAX_DATE_MS);
  if (value.length === 5 && (!bound(since) || !bound(until))) throw fail();
  return {
    time: time as number,
    id: id as number,
    order: order === 'd' ? 'desc' : 'asc',
    ...(value.length === 5 ? { window: { since: since as number | null, until: until as number | null } } : {}),
  };
}

/**
 * A bound as whole ms. Times are stored as whole ms, so a fractional `since` is raised to the
 * next one (an event at T is before T + 0.5) and a fractional `until` too (an event at T is
 * before it).
 */
function timeBound(name: string, value: TimeBound): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) throw bad(`${name}: not a valid time (give a Date or milliseconds since the epoch, within ±${MAX_DATE_MS})`);
  return Math.ceil(ms);
}

function checkString(name: string, value: unknown, maxLength = MAX_VALUE_LENGTH): string {
  if (typeof value !== 'string') throw bad(`${name}: must be a string`);
  if (value.length > maxLength) throw bad(`${name}: longer than ${maxLength} characters`);
  return value;
}

/** A SQL JSON path for a checked field path: every key quoted, so `@timestamp` works too. */
export function jsonPath(field: string): string {
  const split = mapKey(field);
  if (split !== undefined) return `${jsonPath(split.record)}."${split.key}"`;
  return '$' + field.split('.').map((key) => `."${key}"`).join('');
}

/** A key of a record as its source named it (a CMDB column: `cost center`, `team-name`): no quote, backslash or control character. */
const MAP_KEY = /^[^"\\\p{Cc}]{1,64}$/u;

/**
 * A field under a record (hades.cmdb.tags.<key>) split into the record's path and the key, or
 * undefined. The key is taken whole, dots and all, and may be any text MAP_KEY allows: a CMDB's
 * tags keep names (spaces and all; a CSV's columns in lower case) that FIELD_PATH would refuse.
 */
function mapKey(field: string): { record: string; key: string } | undefined {
  for (let at = field.indexOf('.'); at !== -1; at = field.indexOf('.', at + 1)) {
    const record = field.slice(0, at);
    if (!FIELD_PATH.test(record)) return undefined;
    const info = fieldInfo(record);
    if (info?.map === true && info.path === record) {
      const key = field.slice(at + 1);
      return MAP_KEY.test(key) ? { record, key } : undefined;
    }
  }
  return undefined;
}

/** The text form of a JSON value in json_each's row `j`: what a filter value is compared to. */
const JSON_TEXT = "(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'object' THEN NULL WHEN 'array' THEN NULL ELSE CAST(j.atom AS TEXT) END)";

/**
 * The first text after every text that starts with `prefix` (UTF-8 keeps the order of code
 * points): its last code point below U+10FFFF plus one, what follows cut. Undefined when every
 * code point is U+10FFFF: no text starting with it has one above it. (`prefix` followed by
 * U+10FFFF is no bound: `/tmp/` + U+10FFFF + `x` sorts after it and starts with `/tmp/`.)
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0 && points[points.length - 1] === 0x10ffff) points.pop();
  const last = points.pop();
  if (last === undefined) return undefined;
  // Past the surrogates, which are no characters of UTF-8.
  points.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
  return String.fromCodePoint(...points);
}

/** `expr` matched against a string by op; pushes its parameters. */
function match(expr: string, op: FilterOp, value: string, params: (string | number)[], indexed: boolean): string {
  switch (op) {
    case 'eq':
      params.push(value);
      return `${expr} = ?`;
    case 'prefix': {
      // Compared as UTF-8 bytes: SQLite's substr() of text stops at a NUL character, so a prefix
      // holding one would match nothing.
      const exact = `substr(CAST(${expr} AS BLOB), 1, ?) = CAST(? AS BLOB)`;
      if (!indexed) {
        params.push(Buffer.byteLength(value), value);
        return exact;
      }
      // A range the index can walk, then the exact test.
      const end = prefixEnd(value);
      params.push(value);
      if (end !== undefined) params.push(end);
      params.push(Buffer.byteLength(value), value);
      return `(${expr} >= ?${end === undefined ? '' : ` AND ${expr} < ?`} AND ${exact})`;
    }
    case 'contains':
      params.push(value);
      return `instr(${expr}, ?) > 0`;
  }
}

/** Fields a filter can match: values (not objects), not inside a list of objects. */
function searchable(path: string): boolean {
  const info = fieldInfo(path);
  return info !== undefined && info.type !== 'object' && info.arrays.every((a) => a === info.path);
}

/** Whether a field is stored as an integer column (a filter or suppression value must then be one). */
export function integerField(field: string): boolean {
  return Object.hasOwn(INDEXED_FIELDS, field) && INDEXED_FIELDS[field]?.integer === true;
}

/**
 * What is wrong with a field to filter on (a search's, a suppression's), or undefined: one no
 * event has (with the closest name), one inside a list of objects (the stored JSON is not reached
 * there by one path), an object, or a map itself rather than one of its keys. Each would match
 * nothing, silently: a typo must not look like "no such event".
 */
export function fieldProblem(field: string): string | undefined {
  const info = fieldInfo(field);
  if (info === undefined) {
    const candidates = fieldPaths().filter(searchable);
    // A field cut short (process.exe, process.parent.cmd) means the one it begins, the shortest
    // such, before the closest by spelling (process.exe is two edits from process.end).
    const begun = candidates.filter((c) => c.startsWith(field) && c.length > field.length).sort((a, b) => a.length - b.length)[0];
    const close = begun ?? suggest(field, candidates);
    return `no event has a field "${field}"${close ? `; did you mean "${close}"?` : ''} (docs/events.md lists them)`;
  }
  const list = info.arrays.find((a) => a !== info.path);
  if (list !== undefined) {
    const hint = list === 'hades.ancestors' ? '; hades.ancestry holds the ancestors as one line (hades.ancestry~=nginx)' : '';
    return `"${field}" is inside the list ${list}, whose elements a search does not reach${hint}`;
  }
  if (info.type === 'object') return `"${field}" is an object: name one of its fields (docs/events.md)`;
  if (info.map === true && mapKey(field) === undefined) return `"${field}" holds a value under each of its keys: name one (${field}.KEY)`;
  return undefined;
}


/** A term applied to each row examined (read from the table by rowid), with its parameters. */
interface RowTerm {
  readonly sql: string;
  readonly params: readonly (string | number)[];
  /** It reads the stored JSON (MAX_JSON_FILTERS), not a column. */
  readonly json: boolean;
}

/**
 * A term an index walks in time order: equality on the first column of one of the indexes of
 * events.ts (several values: one walk of the index per value, merged). When another term is
 * walked instead, it applies to each row examined, as `term`.
 */
interface Walkable {
  /** Which to walk when there are several: the lowest (WALK_RANK). */
  readonly rank: number;
  readonly index: string;
  readonly column: string;
  readonly values: readonly (string | number)[];
  readonly term: RowTerm;
}

/**
 * The index each column is walked by, and the order of preference when a search has terms on
 * several: the one likely to hold the fewest rows first (an event id is at most one per agent,
 * an address or a program a small part of the fleet's events, a host one machine of it, a user
 * name such as root or an action many of them).
 */
const WALK_RANK: Readonly<Record<string, { readonly rank: number; readonly index: string }>> = Object.freeze({
  event_id: { rank: 0, index: 'events_event_id_agent' },
  destination_ip: { rank: 1, index: 'events_destination_ip_time' },
  executable: { rank: 2, index: 'events_executable_time' },
  host: { rank: 3, index: 'events_host_time' },
  user_name: { rank: 4, index: 'events_user_time' },
  action: { rank: 5, index: 'events_action_time' },
});

/**
 * Rows of its index a term is counted to at most when choosing which to walk (BuiltQuery.choices):
 * a term with fewer rows in the window than this, and than the others, is walked; between terms
 * of more, the first by WALK_RANK. A count is of the index alone, tens of ns a row: a few ms.
 */
export const PROBE_ROWS = 50_000;

/** Values of one term walked as that many walks of its index (several actions, an IPv4 address and its mapped form), at most. */
const MAX_WALKS = 8;

function walkable(column: string, values: readonly (string | number)[], term: RowTerm): Walkable {
  const { rank, index } = WALK_RANK[column] as { rank: number; index: string };
  return { rank: values.length === 1 ? rank : rank + 0.5, index, column, values, term };
}

/** The SQL term of `column` equal to one of `values`. */
function equalTerm(column: string, values: readonly (string | number)[]): RowTerm {
  return { sql: values.length === 1 ? `${column} = ?` : `${column} IN (${values.map(() => '?').join(', ')})`, params: values, json: false };
}

/** What one filter becomes: a term an index can walk, or one applied to each row examined. */
function filterTerm(filter: FieldFilter, index: number): Walkable | RowTerm {
  if (filter === null || typeof filter !== 'object') throw bad(`filters[${index}]: must be an object with field, op and value`);
  const field = checkString(`filters[${index}].field`, filter.field, MAX_FIELD_LENGTH);
  if (!FIELD_PATH.test(field) && mapKey(field) === undefined) throw bad(`filters[${index}].field: "${field}" is not a field path (lower-case ECS names joined by dots, e.g. process.executable)`);
  const problem = fieldProblem(field);
  if (problem !== undefined) throw bad(`filters[${index}].field: ${problem}`);
  const op = filter.op;
  if (op !== 'eq' && op !== 'prefix' && op !== 'contains') throw bad(`filters[${index}].op: unknown operator ${JSON.stringify(op)} (use eq, prefix or contains)`);
  const value = checkString(`filters[${index}].value`, filter.value);
  if (value === '' && op !== 'eq') throw bad(`filters[${index}].value: an empty ${op === 'prefix' ? 'prefix' : 'text'} matches every value; leave the filter out`);
  // A value the field can never hold would match nothing, silently (a typo in a hunt must not
  // look like "no such event"): refused, as for the integers below.
  const info = fieldInfo(field);
  if (op === 'eq' && info?.values !== undefined && !info.values.has(value)) throw bad(`filters[${index}].value: ${field} is one of ${[...info.values].join(', ')}, not "${value}"`);
  // An address is compared as agents write it (lower case, zeros compressed), an IPv4 one also
  // as mapped into IPv6 (runtime/ip-address.ts): 2001:DB8::1 finds 2001:db8::1, and 203.0.113.9
  // (or ::ffff:203.0.113.9) finds both forms.
  let forms: string[] | undefined;
  if (op === 'eq' && info?.ip === true && value !== '') {
    forms = addressForms(value);
    if (forms === undefined) throw bad(`filters[${index}].value: ${field} is an IP address; "${value}" is not one (a prefix of one: ${field}^=${value})`);
  }
  const equals = forms ?? [value];
  const indexed = Object.hasOwn(INDEXED_FIELDS, field) ? INDEXED_FIELDS[field] : undefined;
  if (indexed !== undefined) {
    if (indexed.integer === true) {
      if (op === 'eq') {
        if (!/^(0|[1-9][0-9]{0,14})$/.test(value)) throw bad(`filters[${index}].value: ${field} is an integer; "${value}" is not one`);
        return equalTerm(indexed.column, [Number(value)]);
      }
      const params: (string | number)[] = [];
      return { sql: match(`CAST(${indexed.column} AS TEXT)`, op, value, params, false), params, json: false };
    }
    // Equality on an indexed column can be walked in time order. A prefix cannot: its range of
    // the (column, time) index is in column order, which SQLite would read whole and sort by time
    // before the first row came (seconds over a million events, on the thread that stores the
    // fleet's): it is tested on each row examined, as the other columns are.
    if (op === 'eq') {
      const term = equalTerm(indexed.column, equals);
      return indexed.index === true && equals.length <= MAX_WALKS ? walkable(indexed.column, equals, term) : term;
    }
    const params: (string | number)[] = [];
    return { sql: match(indexed.column, op, value, params, false), params, json: false };
  }
  if (op === 'eq' && info !== undefined) {
    if (info.type === 'number' && !/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(value)) throw bad(`filters[${index}].value: ${field} is a number; "${value}" is not one`);
    // Events' numbers are doubles: an integer beyond 2^53 would be read as its neighbour and
    // match another value silently.
    if (info.type === 'number' && !value.includes('.') && !Number.isSafeInteger(Number(value))) throw bad(`filters[${index}].value: ${field} holds integers up to ${Number.MAX_SAFE_INTEGER} exactly; "${value}" is beyond them`);
    if (info.type === 'boolean' && value !== 'true' && value !== 'false') throw bad(`filters[${index}].value: ${field} is true or false, not "${value}"`);
  }
  // Any other field, through the stored JSON. json_each yields the value itself for a scalar
  // (key NULL) and each element for an array (integer keys): an array matches when any element
  // does. Members of an object (text keys) never match.
  const params: (string | number)[] = [jsonPath(field)];
  let test: string;
  if (op === 'eq' && info?.type === 'number') {
    // As numbers: the text of a number is one of its spellings (4242.0 is 4242, read back as
    // "4242"), and one the check above lets through must not match nothing.
    params.push(Number(value));
    test = `j.type IN ('integer', 'real') AND j.atom = ?`;
  } else if (forms !== undefined && forms.length > 1) {
    params.push(...forms);
    test = `${JSON_TEXT} IN (${forms.map(() => '?').join(', ')})`;
  } else {
    test = match(JSON_TEXT, op, equals[0] as string, params, false);
  }
  return { sql: `EXISTS (SELECT 1 FROM json_each(e.event, ?) AS j WHERE (j.key IS NULL OR typeof(j.key) = 'integer') AND ${test})`, params, json: true };
}

/** Validates a query and builds its statements. */
export function buildQuery(query: EventQuery, scanBudget = SCAN_BUDGET): BuiltQuery {
  if (query === null || typeof query !== 'object') throw bad('the query must be an object');
  // Terms every walk applies in the index itself: the time window and the cursor.
  const bounds: string[] = [];
  const boundParams: (string | number)[] = [];
  const walkables: Walkable[] = [];
  const terms: RowTerm[] = [];

  const order = query.order ?? 'desc';
  if (order !== 'desc' && order !== 'asc') throw bad(`order: must be desc or asc, not ${JSON.stringify(order)}`);

  const limit = query.limit ?? DEFAULT_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw bad(`limit: must be an integer from 1 to ${MAX_LIMIT}, not ${String(limit)}`);
  }

  // A cursor's next pages keep the window of its first (CursorPosition.window).
  const position = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const window = position?.window;
  const since = window !== undefined ? (window.since ?? undefined) : query.since === undefined ? undefined : timeBound('since', query.since);
  const until = window !== undefined ? (window.until ?? undefined) : query.until === undefined ? undefined : timeBound('until', query.until);
  if (since !== undefined && until !== undefined && until < since) {
    throw bad(`until (${new Date(until).toISOString()}) is before since (${new Date(since).toISOString()})`);
  }
  if (since !== undefined) {
    bounds.push('time >= ?');
    boundParams.push(since);
  }
  if (until !== undefined) {
    bounds.push('time < ?');
    boundParams.push(until);
  }

  if (query.host !== undefined) {
    const host = checkString('host', query.host);
    walkables.push(walkable('host', [host], equalTerm('host', [host])));
  }
  // No index has the agent first (the host's has the host): tested on each row examined.
  if (query.agentId !== undefined) terms.push(equalTerm('agent_id', [checkString('agentId', query.agentId)]));
  if (query.action !== undefined) {
    const actions: readonly unknown[] = Array.isArray(query.action) ? query.action : [query.action];
    if (actions.length === 0) throw bad('action: an empty list matches nothing; leave action out to match every action');
    if (actions.length > MAX_ACTIONS) throw bad(`action: at most ${MAX_ACTIONS} actions`);
    const values = [...new Set(actions.map((a, i) => checkString(`action[${i}]`, a, 64)))];
    const term = equalTerm('action', values);
    if (values.length <= MAX_WALKS) walkables.push(walkable('action', values, term));
    else terms.push(term);
  }

  const filters = query.filters ?? [];
  if (!Array.isArray(filters)) throw bad('filters: must be a list of { field, op, value }');
  if (filters.length > MAX_FILTERS) throw bad(`filters: at most ${MAX_FILTERS} filters`);
  filters.forEach((f: FieldFilter, i) => {
    const term = filterTerm(f, i);
    if ('index' in term) walkables.push(term);
    else terms.push(term);
  });
  const json = terms.filter((t) => t.json).length;
  if (json > MAX_JSON_FILTERS) {
    const columns = Object.entries(INDEXED_FIELDS);
    const indexedNames = columns.filter(([, c]) => c.index === true).map(([name]) => name);
    const columnNames = columns.filter(([, c]) => c.index !== true).map(([name]) => name);
    throw bad(`filters: at most ${MAX_JSON_FILTERS} on fields read from each event's JSON; these are not (columns of their own): ${indexedNames.join(', ')} (indexed) and ${columnNames.join(', ')}`);
  }

  if (position !== undefined) {
    if (position.order !== order) throw bad(`cursor: it belongs to a query in ${position.order} order, this one is ${order}`);
    // Keyset: strictly after the last row in (time, id) order. The first term bounds the index
    // range; the second breaks ties at the same millisecond.
    const cmp = order === 'desc' ? '<' : '>';
    bounds.push(`time ${cmp}= ? AND (time ${cmp} ? OR id ${cmp} ?)`);
    boundParams.push(position.time, position.time, position.id);
  }

  const direction = order === 'desc' ? 'DESC' : 'ASC';
  const sorted = `ORDER BY time ${direction}, id ${direction}`;
  const searched = { since: since ?? null, until: until ?? null };
  // Rows of the walk each term is tested on at most (when there are other terms than the walk's).
  const rows = Math.max(1, Math.floor(scanBudget / (json > 0 ? json : ROW_SCAN_COST)));
  const cmp = order === 'desc' ? '>' : '<';
  const stop: RowTerm = { sql: `time ${cmp}= ? AND (time ${cmp} ? OR id ${cmp}= ?)`, params: [], json: false };

  // The statements of a search that walks `walked` (or the time index): every other term applies
  // to the rows it yields.
  const plan = (walked: Walkable | undefined): SearchPlan => {
    const others = [...terms, ...walkables.filter((w) => w !== walked).map((w) => w.term)];
    const index = walked?.index ?? 'events_time';
    // The walk of the index (several values: one walk each, merged, which SQLite streams),
    // selecting `columns`, with `more` terms on the rows (and their parameters) and `tail` after
    // its order.
    const walk = (columns: string, more: readonly RowTerm[], tail: string, tailParams: readonly number[]): { sql: string; params: (string | number)[] } => {
      const arm = (value: string | number | undefined) => {
        const where = [...(value === undefined ? [] : [`${walked?.column} = ?`]), ...bounds, ...more.map((t) => t.sql)];
        return {
          sql: `SELECT ${columns} FROM events AS e INDEXED BY ${index}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`,
          params: [...(value === undefined ? [] : [value]), ...boundParams, ...more.flatMap((t) => t.params)],
        };
      };
      const arms = walked === undefined ? [arm(undefined)] : walked.values.map(arm);
      return { sql: `${arms.map((a) => a.sql).join(' UNION ALL ')} ${sorted} ${tail}`, params: [...arms.flatMap((a) => a.params), ...tailParams] };
    };
    if (others.length === 0) {
      // The walk is the answer: it reads `limit + 1` rows.
      const { sql, params } = walk(PAGE_COLUMNS, [], 'LIMIT ?', [limit + 1]);
      return { sql, params, paramsUntil: () => params };
    }
    // The other terms are tested on each row of the walk up to the `rows`th (found first, in the
    // index alone): the walk streams in its order, and stops at `limit + 1` matches or there.
    const edge = walk('id, time', [], 'LIMIT 2 OFFSET ?', [rows - 1]);
    const main = (at: { time: number; id: number } | undefined): (string | number)[] => {
      // Without a last row to examine, a position before every row.
      const time = at?.time ?? (order === 'desc' ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER);
      const id = at?.id ?? (order === 'desc' ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER);
      return walk(PAGE_COLUMNS, [...others, { ...stop, params: [time, time, id] }], 'LIMIT ?', [limit + 1]).params;
    };
    const { sql } = walk(PAGE_COLUMNS, [...others, stop], 'LIMIT ?', [limit + 1]);
    return { sql, params: main(undefined), paramsUntil: main, scan: { rows, ...edge } };
  };

  // One index is walked, in the order of the search: by WALK_RANK (the first given of equal
  // rank), else the time index. With several terms an index can walk, the one with the fewest
  // rows in the window (counted in the index alone, up to one more than the budget) is walked.
  const ranked = [...walkables].sort((a, b) => a.rank - b.rank);
  const base = { limit, order, window: searched };
  if (ranked.length <= 1) return { ...plan(ranked[0]), ...base };
  const choices = ranked.map((w) => {
    const count = `SELECT 1 FROM events INDEXED BY ${w.index} WHERE ${[`${w.column} = ?`, ...bounds].join(' AND ')} LIMIT ?`;
    const sql = `SELECT ${w.values.map(() => `(SELECT count(*) FROM (${count}))`).join(' + ')} AS n`;
    return { probe: (most: number) => ({ sql, params: w.values.flatMap((v) => [v, ...boundParams, most]) }), plan: () => plan(w) };
  });
  return { ...plan(ranked[0]), ...base, choices };
}
