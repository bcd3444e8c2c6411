import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TObject } from '@sinclair/typebox';
import { HadesError } from '../errors.js';
import { timestampMs } from './fields.js';
import { eventActions, eventSchemas, type EventAction, type HadesEvent } from './schema.js';

export interface EventProblem {
  /** JSON pointer of the field, e.g. /process/pid. */
  readonly path: string;
  readonly message: string;
}

export type EventCheck = { readonly ok: true; readonly event: HadesEvent } | { readonly ok: false; readonly code: 'HADES_ERR_EVENT_UNKNOWN_ACTION' | 'HADES_ERR_EVENT_INVALID'; readonly problems: readonly EventProblem[] };

/**
 * Each kind's checker, compiled at its first use: a checker is the source of a function of tens
 * of KiB and its code, and a process checks a few kinds (an agent its plugins' events), not all.
 */
const checkers = new Map<string, TypeCheck<TObject>>();
const knownActions: ReadonlySet<string> = new Set(eventActions);

function checkerFor(action: string): TypeCheck<TObject> | undefined {
  let checker = checkers.get(action);
  if (checker === undefined && knownActions.has(action)) {
    checker = TypeCompiler.Compile(eventSchemas[action as EventAction]);
    checkers.set(action, checker);
  }
  return checker;
}

const MAX_PROBLEMS = 20;

/** Checks a value against the schema of its `event.action`; reports up to 20 problems. */
export function checkEvent(value: unknown): EventCheck {
  const action = (value as { event?: { action?: unknown } } | null)?.event?.action;
  const checker = typeof action === 'string' ? checkerFor(action) : undefined;
  if (!checker) {
    return {
      ok: false,
      code: 'HADES_ERR_EVENT_UNKNOWN_ACTION',
      problems: [{ path: '/event/action', message: `unknown event.action ${JSON.stringify(action)}; known: ${eventActions.join(', ')}` }],
    };
  }
  if (checker.Check(value)) {
    // The schema checks the time's shape; the event's own time must also be a real one.
    const timestamp = (value as { '@timestamp': string })['@timestamp'];
    if (Number.isFinite(timestampMs(timestamp))) return { ok: true, event: value as HadesEvent };
    return { ok: false, code: 'HADES_ERR_EVENT_INVALID', problems: [{ path: '/@timestamp', message: `${JSON.stringify(timestamp)} is not a real time (month 1-12, a day of that month, hours 0-23)` }] };
  }
  const problems: EventProblem[] = [];
  for (const error of checker.Errors(value)) {
    problems.push({ path: error.path, message: error.message });
    if (problems.length >= MAX_PROBLEMS) break;
  }
  return { ok: false, code: 'HADES_ERR_EVENT_INVALID', problems };
}

/** Like checkEvent, but throws a coded error. */
export function assertEvent(value: unknown): HadesEvent {
  const result = checkEvent(value);
  if (result.ok) return result.event;
  const text = result.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
  throw new HadesError(result.code, text, { details: { problems: result.problems } });
}

export function isEventAction(value: string): value is EventAction {
  return Object.hasOwn(eventSchemas, value);
}
