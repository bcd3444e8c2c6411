/**
 * Event ids and sequence numbers for one agent process: every event, whichever source built it,
 * takes the next number, so `event.sequence` orders the agent's whole stream. The id prefix is
 * random per start, so ids stay unique across restarts (the server drops duplicates by id).
 */
import { randomBytes } from 'node:crypto';

export class Sequencer {
  readonly prefix = randomBytes(6).toString('hex');
  private sequence = 0;

  /** The next sequence number. */
  next(): number {
    return this.sequence++;
  }

  /** The id of an event with this sequence number. */
  id(sequence: number): string {
    return `${this.prefix}-${sequence.toString(36)}`;
  }

  /** Numbers handed out so far. */
  get count(): number {
    return this.sequence;
  }
}
