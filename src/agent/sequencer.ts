/**
 * Event ids and sequence numbers for one agent process: every event, whichever source built it,
 * takes the next number, so `event.sequence` orders the agent's whole stream.
 *
 * An id is `TIME-PREFIX-SEQUENCE`: the time it was made (milliseconds since the epoch, base 36,
 * 9 characters, so ids sort by it as text), a prefix random per start (ids stay unique across
 * restarts: the server drops duplicates by id), and the sequence number (base 36). The time
 * comes first for the server's store: its deduplication index is ordered by id, and ids of the
 * whole fleet made in the same moments are inserted side by side, in the few index pages at its
 * end, instead of one page per agent each commit (docs/perf.md). Uniqueness rests on the prefix
 * and the sequence alone: a clock set back only costs that locality.
 */
import { randomBytes } from 'node:crypto';

const TIME_DIGITS = 9;

export class Sequencer {
  readonly prefix = randomBytes(6).toString('hex');
  private sequence = 0;
  /** The last millisecond an id was made in, and its text: one conversion per millisecond. */
  private lastMs = -1;
  private lastTime = '';

  /** The next sequence number. */
  next(): number {
    return this.sequence++;
  }

  /** The id of an event with this sequence number, made at `now` (ms since the epoch). */
  id(sequence: number, now: number = Date.now()): string {
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastTime = Math.max(0, Math.floor(now)).toString(36).padStart(TIME_DIGITS, '0');
    }
    return `${this.lastTime}-${this.prefix}-${sequence.toString(36)}`;
  }

  /** Numbers handed out so far. */
  get count(): number {
    return this.sequence;
  }
}
