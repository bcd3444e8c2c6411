/**
 * Turns an event into one NDJSON line (without the newline). Every output and the spool use
 * this one function, so an event is serialised once however many outputs it goes to.
 */
import type { HadesEvent } from '../common/events/index.js';

export function serializeEvent(event: HadesEvent): string {
  return JSON.stringify(event);
}
