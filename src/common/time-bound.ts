/**
 * The time bounds people give to searches (`--since`, `--until`, the API's `since` and `until`):
 * a duration back from now (`30s`, `15m`, `2h`, `7d`) or an ISO date or time
 * (`2026-11-28`, `2026-11-28T08:00:00Z`). One reading for the API and the command line, so that
 * the command refuses what the server would refuse before it sends anything.
 */
const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The furthest a JavaScript Date reaches from the epoch, either way. */
const MAX_DATE_MS = 8.64e15;

/** What a bound may look like, for error messages. */
export const TIME_BOUND_FORMS = 'a duration (30s, 15m, 2h, 7d) or an ISO time (2026-11-28 or 2026-11-28T08:00:00Z)';

/** The bound as ms since the epoch, or undefined when it is neither form. */
export function timeBound(value: string, now = Date.now()): number | undefined {
  const match = DURATION.exec(value);
  if (match) {
    const time = now - Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
    // Further back than a Date can say (or than a number can: 400 nines of days) is no time.
    return Math.abs(time) <= MAX_DATE_MS ? time : undefined;
  }
  // An ISO date or time; Date.parse alone would also take '5' (as May 2001).
  const time = /^\d{4}-\d{2}-\d{2}([T ]|$)/.test(value) ? Date.parse(value) : NaN;
  return Number.isNaN(time) ? undefined : time;
}
