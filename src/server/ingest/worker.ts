/**
 * The server's ingest worker: a thread of its own that checks agents' batches and makes their
 * rows (./prepare.ts), and runs the stored events through the rules. The main thread keeps the
 * gRPC streams, the database and the alerts; this thread takes the per-event work that does not
 * need them (parsing, the schema check, serialising the stored copy, matching), so the server
 * uses a second core. Requests are answered in the order they come (./protocol.ts).
 *
 * The rule set and its correlation state live here; a timer owned by this thread expires the
 * correlation groups whose window has passed, and stops when the thread is told to close.
 */
import { parentPort } from 'node:worker_threads';
import { HadesError, toHadesError } from '../../common/errors.js';
import { loadRules, type RuleSet, type RuleStats } from '../../rules/index.js';
import { batchBytes, prepareBatch } from './prepare.js';
import type { BatchSeq, DetectReply, IngestReply, IngestRequest, LoadReply, PrepareReply, WireMatch } from './protocol.js';

/** Prepared batches whose events wait for `detect` or `forget`: bounded, in case one never comes. */
const MAX_KEPT = 8192;
const EXPIRE_EVERY_MS = 5_000;

const port = parentPort;
if (port === null) throw new HadesError('HADES_ERR_INTERNAL', 'the ingest worker runs as a worker thread');

let ruleSet: RuleSet | undefined;
const kept = new Map<number, Record<string, unknown>[]>();
const decoder = new TextDecoder();

const expiry = setInterval(() => ruleSet?.expireIdle(Date.now()), EXPIRE_EVERY_MS);
expiry.unref();

/**
 * Per agent, the last spool sequence number of the batches whose events went through the rules as
 * they were prepared, in this thread's life (most recently used last). A batch that begins at or
 * before it may be one sent again (its Ack was lost, or its commit failed): its events wait for
 * the store to say which of them are new (`detect`), so that correlation rules do not count an
 * event twice. A new thread starts without any, as its correlation state starts empty.
 */
const matchedThrough = new Map<string, number>();
/** Agents remembered in matchedThrough; the least recently seen goes first. */
const MAX_AGENTS = 100_000;

/** Drops the entry of a map that was set first (a Map keeps insertion order). */
function dropOldest(map: Map<unknown, unknown>): void {
  const oldest = map.keys().next();
  if (oldest.done !== true) map.delete(oldest.value);
}

/** Whether a batch is new: its first event comes after everything of its agent matched so far. */
function isNew(agentId: string, seq: BatchSeq | undefined): seq is BatchSeq {
  return seq !== undefined && seq.first > (matchedThrough.get(agentId) ?? 0);
}

function prepare(request: Extract<IngestRequest, { kind: 'prepare' }>): PrepareReply {
  const bytes = batchBytes(request.ndjson, request.inflated);
  if (!(bytes instanceof Uint8Array)) return { bytes: request.ndjson.byteLength, rejected: 0, refused: bytes, rows: [] };
  const batch = prepareBatch(request.agentId, decoder.decode(bytes), request.cmdb, request.now);
  const reply = { bytes: bytes.byteLength, rejected: batch.rejected, rows: batch.rows, ...(batch.rejectedFirst === undefined ? {} : { rejectedFirst: batch.rejectedFirst }), ...(batch.refused ? { refused: batch.refused } : {}) };
  if (!request.keep || batch.refused !== undefined || batch.events.length === 0) return reply;
  if (ruleSet !== undefined && isNew(request.agentId, request.seq)) {
    // Matched now, while the parsed events are young: held until after the commit, they would
    // outlive several collections of the young generation and be copied into the old one.
    matchedThrough.delete(request.agentId);
    matchedThrough.set(request.agentId, request.seq.last);
    if (matchedThrough.size > MAX_AGENTS) dropOldest(matchedThrough);
    const errors: string[] = [];
    return { ...reply, detection: { ...run(batch.events.entries(), errors), errors } };
  }
  // The oldest batch's answer never came: its events go unmatched rather than held for ever.
  if (kept.size >= MAX_KEPT) dropOldest(kept);
  kept.set(request.id, batch.events);
  return reply;
}

/** Runs events through the rules; `index` of a match is the event's position given with it. */
function run(events: Iterable<readonly [number, Record<string, unknown> | undefined]>, errors: string[]): { evaluated: number; matches: WireMatch[] } {
  const matches: WireMatch[] = [];
  let evaluated = 0;
  if (ruleSet === undefined) return { evaluated, matches };
  for (const [index, event] of events) {
    if (event === undefined) continue;
    evaluated++;
    try {
      for (const m of ruleSet.match(event)) {
        matches.push({ rule: m.rule, output: m.output, severity: m.severity, tags: m.tags, index, ...(m.correlation ? { correlation: m.correlation } : {}) });
      }
    } catch (error) {
      errors.push(toHadesError(error).message);
    }
  }
  return { evaluated, matches };
}

function detect(request: Extract<IngestRequest, { kind: 'detect' }>): DetectReply {
  const events = kept.get(request.batch);
  kept.delete(request.batch);
  const errors: string[] = [];
  // Not kept here (this thread started after the prepare, or MAX_KEPT dropped it): the main
  // thread sends the stored copies instead (`match`).
  if (events === undefined) return { evaluated: 0, matches: [], errors, missing: true };
  const indexes = request.stored ?? events.keys();
  const pairs = function* (): Generator<readonly [number, Record<string, unknown> | undefined]> {
    for (const index of indexes) yield [index, events[index]];
  };
  return { ...run(pairs(), errors), errors };
}

function match(request: Extract<IngestRequest, { kind: 'match' }>): DetectReply {
  const errors: string[] = [];
  const pairs = function* (): Generator<readonly [number, Record<string, unknown> | undefined]> {
    for (const [index, line] of request.lines.entries()) {
      try {
        yield [index, JSON.parse(line) as Record<string, unknown>];
      } catch (error) {
        errors.push(`a stored event is not JSON: ${(error as Error).message}`);
      }
    }
  };
  return { ...run(pairs(), errors), errors };
}

function load(request: Extract<IngestRequest, { kind: 'load' }>): LoadReply {
  const { ruleSet: next, problems } = loadRules(request.files, { samples: false });
  const hasErrors = problems.some((p) => p.severity === 'error');
  // A bad edit never leaves the server without rules: the running set stays.
  if (hasErrors && ruleSet !== undefined) return { applied: false, rules: [...ruleSet.rules], problems };
  ruleSet = next;
  return { applied: true, rules: [...next.rules], problems };
}

function stats(): RuleStats[] {
  return ruleSet?.stats() ?? [];
}

port.on('message', (request: IngestRequest | { readonly kind: 'close' }) => {
  if (request.kind === 'close') {
    clearInterval(expiry);
    port.close();
    return;
  }
  let reply: IngestReply;
  try {
    switch (request.kind) {
      case 'prepare':
        reply = { id: request.id, ok: true, value: prepare(request) };
        break;
      case 'detect':
        reply = { id: request.id, ok: true, value: detect(request) };
        break;
      case 'match':
        reply = { id: request.id, ok: true, value: match(request) };
        break;
      case 'forget':
        kept.delete(request.batch);
        reply = { id: request.id, ok: true, value: null };
        break;
      case 'load':
        reply = { id: request.id, ok: true, value: load(request) };
        break;
      case 'stats':
        reply = { id: request.id, ok: true, value: stats() };
        break;
    }
  } catch (error) {
    const e = toHadesError(error);
    reply = { id: request.id, ok: false, code: e.code, message: e.message };
  }
  port.postMessage(reply);
});
