/**
 * Messages between the server's main thread and its ingest worker (./worker.ts). Every request
 * carries an id and gets exactly one reply with the same id, in the order sent.
 */
import type { ErrorCode } from '../../common/errors.js';
import type { Match, RuleFile, RuleInfo, RuleProblem, RuleStats } from '../../rules/index.js';
import type { Row } from '../store/row.js';
import type { Refusal } from './prepare.js';

export type IngestRequest =
  /**
   * Check a batch and make its rows; with `keep`, its events go through the rules: at once when
   * `seq` says the batch is new (PrepareReply.detection), else they are held for a `detect` or
   * `forget`. `inflated`: `ndjson` is gzip (EventBatch.ndjson_gzip) that inflates to that many
   * bytes, here. `seq`: the agent's spool sequence numbers of the batch's events.
   */
  | { readonly kind: 'prepare'; readonly id: number; readonly agentId: string; readonly ndjson: Uint8Array; readonly inflated: number | undefined; readonly cmdb: object | undefined; readonly now: number; readonly keep: boolean; readonly seq: BatchSeq | undefined }
  /** Run the kept events of a prepared batch (`batch`: the id of its `prepare`) through the rules: those at `stored`, or all (null). */
  | { readonly kind: 'detect'; readonly id: number; readonly batch: number; readonly stored: readonly number[] | null }
  /**
   * Run events given as JSON lines (the stored copies of a batch whose kept events are gone: the
   * thread that kept them died, or dropped them) through the rules; `index` is the line's position.
   */
  | { readonly kind: 'match'; readonly id: number; readonly lines: readonly string[] }
  /** Drop the kept events of a prepared batch (it was not stored, or nothing of it was new). */
  | { readonly kind: 'forget'; readonly id: number; readonly batch: number }
  /** Compile rule files; they replace the running rules unless they have errors and rules run. */
  | { readonly kind: 'load'; readonly id: number; readonly files: readonly RuleFile[] }
  /** The running rules' counters. */
  | { readonly kind: 'stats'; readonly id: number };

/** The first and last spool sequence numbers of a batch's events, as the agent numbered them. */
export interface BatchSeq {
  readonly first: number;
  readonly last: number;
}

export interface PrepareReply {
  /** Bytes of the batch's NDJSON (decompressed, for a compressed batch). */
  readonly bytes: number;
  readonly rejected: number;
  /** Why the first rejected line was, when one was (prepare.ts). */
  readonly rejectedFirst?: string;
  readonly refused?: Refusal;
  readonly rows: Row[];
  /**
   * The batch's events run through the rules as it was prepared (a new batch, with `keep`):
   * matches name their event by its index in `rows`, duplicates included, which the caller
   * leaves out once the store says which events were new. Absent: the events are held for
   * `detect` (a batch that may be sent again, or no rules yet).
   */
  readonly detection?: DetectReply;
}

/** A match without its event: `index` is the event's position in the prepared batch. */
export type WireMatch = Omit<Match, 'event'> & { readonly index: number };

export interface DetectReply {
  /** Events run through the rules. */
  readonly evaluated: number;
  readonly matches: WireMatch[];
  /** Events the engine failed on (a bug), with the message. */
  readonly errors: string[];
  /** `detect` only: the thread keeps no events under that batch (it was started again since, or dropped them). */
  readonly missing?: boolean;
}

export interface LoadReply {
  readonly applied: boolean;
  readonly rules: RuleInfo[];
  readonly problems: readonly RuleProblem[];
}

export type IngestReply =
  | { readonly id: number; readonly ok: true; readonly value: PrepareReply | DetectReply | LoadReply | RuleStats[] | null }
  | { readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly message: string };
