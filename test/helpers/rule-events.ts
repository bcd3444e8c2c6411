/** Events for rule tests: the schema's example events with some fields changed. */
import { exampleEvent, type EventAction } from '../../src/common/events/index.js';

/** An example event of the schema with dotted fields set (a value of undefined deletes the field). */
export function exampleWith(action: EventAction, set: Record<string, unknown> = {}): Record<string, unknown> {
  const e = structuredClone(exampleEvent(action));
  for (const [dotted, value] of Object.entries(set)) {
    const keys = dotted.split('.');
    let node = e;
    for (const k of keys.slice(0, -1)) {
      node[k] ??= {};
      node = node[k] as Record<string, unknown>;
    }
    if (value === undefined) delete node[keys.at(-1)!];
    else node[keys.at(-1)!] = value;
  }
  return e;
}

export const BASE = Date.parse('2026-11-28T08:00:00.000Z');
let sequence = 0;

/** exampleWith, at `seconds` after BASE and with an event.id of its own. */
export function timedEvent(action: EventAction, seconds: number, set: Record<string, unknown> = {}): Record<string, unknown> {
  const e = exampleWith(action, set);
  e['@timestamp'] = new Date(BASE + seconds * 1000).toISOString();
  (e['event'] as Record<string, unknown>)['id'] = `e${++sequence}`;
  return e;
}
