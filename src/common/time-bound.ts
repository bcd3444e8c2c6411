/**
 * The time bounds people give to searches (`--since`, `--until`, the API's `since` and `until`):
 * a duration back from now (`30s`, `15m`, `2h`, `7d`) or an ISO date or time
 * (`2026-11-28`, `2026-11-28T08:00:00Z`; without a zone, UTC). One reading for the API and the command line, so that
 * the command refuses what the server would refuse before it sends anything.
 */
const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The furthest a JavaScript Date reaches from the epoch, either way. */
export const MAX_DATE_MS = 8.64e15;

/** What a bound may look like, for error messages. */
export const TIME_BOUND_FORMS = 'a duration (30s, 15m, 2h, 7d) or an ISO time (2026-11-28 or 2026-11-28T08:00:00Z)';

/**
 * `2026-11-28`, `2026-11-28T08:00`, `2026-11-28 08:00:00.5`, `2026-11-28T08:00:00Z`,
 * `2026-11-28T10:00:00+02:00`: a date, then maybe a time, then maybe its zone.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO date or time as ms since the epoch, or undefined when it is not one or names a day or
 * time that does not exist (2026-02-30, 24:00, 08:60): Date.parse would roll those over into
 * the next day or month, and move a search's window without a word. A time without a zone is
 * read in `zoneless`: UTC for the server (as every time the store keeps is, whatever the zone of
 * the machine it runs on), the person's local time for the command line. A date alone is UTC.
 */
function isoTime(value: string, zoneless: Zoneless): number | undefined {
  const m = ISO.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part))) as number[];
  const ms = m[7] === undefined ? 0 : Math.trunc(Number(`0.${m[7]}`) * 1000);
  const zone = m[8];
  const local = zone === undefined && zoneless === 'local' && m[4] !== undefined;
  // Set part by part: Date.UTC and new Date(y, ...) read the years 0 to 99 as 1900 to 1999.
  const date = new Date(0);
  if (local) {
    date.setFullYear(year!, month! - 1, day);
    date.setHours(hour, minute, second, ms);
  } else {
    date.setUTCFullYear(year!, month! - 1, day);
    date.setUTCHours(hour, minute, second, ms);
  }
  const time = date.getTime();
  // Day 30 of February is taken as 2 March: the day is real when it reads back the same.
  const [readDay, readMonth] = local ? [date.getDate(), date.getMonth()] : [date.getUTCDate(), date.getUTCMonth()];
  if (month! < 1 || month! > 12 || readDay !== day || readMonth !== month! - 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (zone === undefined || zone.toUpperCase() === 'Z') return time;
  const offset = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
  const hours = Number(offset[2]);
  const minutes = Number(offset[3] ?? 0);
  if (hours > 23 || minutes > 59) return undefined;
  return time - (offset[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
}

/** How a time without a zone is read (isoTime). */
export type Zoneless = 'utc' | 'local';

/** The bound as ms since the epoch, or undefined when it is neither form. */
export function timeBound(value: string, now = Date.now(), zoneless: Zoneless = 'utc'): number | undefined {
  const match = DURATION.exec(value);
  if (match) {
    const time = now - Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
    // Further back than a Date can say (or than a number can: 400 nines of days) is no time.
    return Math.abs(time) <= MAX_DATE_MS ? time : undefined;
  }
  const time = isoTime(value, zoneless);
  return time !== undefined && Math.abs(time) <= MAX_DATE_MS ? time : undefined;
}
