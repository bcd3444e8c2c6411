/**
 * How far detection has gone through the store, kept in the database: every event whose rowid is
 * at most `through` has been run through the rules. Batches are matched after their commit (on
 * the ingest worker), so a server killed in between has stored events that were never matched;
 * at the next start the server runs the events after the mark through the rules (server.ts).
 *
 * Batches are marked pending from their commit until their matching ends; the mark is the rowid
 * before the oldest pending batch (or the last rowid committed when none is pending), written to
 * the database at most once every `saveEveryMs` and at stop, so it may lag: replayed events that
 * had been matched are found among their alerts' events (AlertStore.holds) and raise nothing.
 */
import type { Statement } from 'better-sqlite3';
import { HadesError } from '../../common/errors.js';
import { migrate, type Db } from '../db.js';

export const DETECTION_MARK_MIGRATIONS: readonly string[] = [`CREATE TABLE detection_mark (id INTEGER PRIMARY KEY CHECK (id = 1), matched_through INTEGER NOT NULL)`];

export class DetectionMark {
  readonly #db: Db;
  readonly #update: Statement<[number]>;
  /** First rowid of each pending batch, by its token. */
  readonly #pending = new Map<number, number>();
  #nextToken = 1;
  #committed: number;
  #saved: number;
  #timer: NodeJS.Timeout | undefined;

  /** `initial`: where a new mark starts (the store's last rowid: what is there counts as matched). */
  constructor(db: Db, initial: () => number, saveEveryMs = 1000) {
    this.#db = db;
    try {
      migrate(db, 'detection_mark', DETECTION_MARK_MIGRATIONS);
      const row = db.prepare('SELECT matched_through AS through FROM detection_mark WHERE id = 1').get() as { through: number } | undefined;
      this.#saved = row?.through ?? initial();
      if (row === undefined) db.prepare('INSERT INTO detection_mark (id, matched_through) VALUES (1, ?)').run(this.#saved);
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot prepare the detection mark of ${db.name}: ${(error as Error).message}`, { cause: error });
    }
    this.#update = db.prepare<[number]>('UPDATE detection_mark SET matched_through = ? WHERE id = 1');
    this.#committed = this.#saved;
    this.#timer = setInterval(() => this.save(), saveEveryMs);
    this.#timer.unref();
  }

  /** The saved mark: events after it may not have been matched. */
  get saved(): number {
    return this.#saved;
  }

  /** A batch committed with rowids first..last waits for its matching; returns its token. */
  pending(first: number, last: number): number {
    const token = this.#nextToken++;
    this.#pending.set(token, first);
    if (last > this.#committed) this.#committed = last;
    return token;
  }

  /** The batch's matching ended (or was given up: it is then logged where it failed). */
  done(token: number): void {
    this.#pending.delete(token);
  }

  /** Everything at or before this rowid has been matched. */
  get through(): number {
    let oldest = Infinity;
    for (const first of this.#pending.values()) if (first < oldest) oldest = first;
    return oldest === Infinity ? this.#committed : oldest - 1;
  }

  /**
   * Writes the mark when it moved (its own short transaction). Never throws: the next try writes
   * it. Without `wait`, a database another connection holds is not waited for (the timer runs on
   * the thread that serves the agents): the mark stays behind, which only costs a longer replay.
   */
  save(wait = false): void {
    const through = this.through;
    if (through <= this.#saved || !this.#db.open || this.#db.inTransaction) return;
    const timeout = wait ? undefined : (this.#db.pragma('busy_timeout', { simple: true }) as number);
    try {
      if (timeout !== undefined) this.#db.pragma('busy_timeout = 0');
      this.#update.run(through);
      this.#saved = through;
    } catch {
      // Busy or full: tried again at the next interval.
    } finally {
      if (timeout !== undefined) this.#db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  /** Saves the mark one last time (waiting for the database as any write does) and stops the timer. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.save(true);
  }
}
