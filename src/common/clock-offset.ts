/**
 * How far an agent's clock is from the server's, as people read it: the server computes it from
 * each heartbeat (the agent's `time` against its own clock), says it in its log when it is large,
 * and `hades agents list` shows it.
 */

/** An offset as `+3 h 2 min` or `-1 d 4 h` (ahead or behind): its two largest units, to the second. */
export function formatOffset(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  let left = Math.round(Math.abs(ms) / 1000);
  const sign = ms < 0 && left > 0 ? '-' : '+';
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['min', 60], ['s', 1]] as const) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n > 0 && parts.length < 2) parts.push(`${n} ${unit}`);
  }
  return `${sign}${parts.length > 0 ? parts.join(' ') : '0 s'}`;
}
