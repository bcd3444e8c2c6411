/** Timing a RuleSet on a list of events, shared by bench/rules.ts and bench/detection-engine.ts. */
import { performance } from 'node:perf_hooks';
import type { RuleSet } from '../src/rules/index.js';

/** Gives the events new, later times at each call, 5 ms apart, as in a stream (not timed). */
export function restamper(startMs: number): (events: readonly Record<string, unknown>[]) => void {
  let clock = startMs;
  return (events) => {
    for (const e of events) {
      clock += 5;
      e['@timestamp'] = new Date(clock).toISOString();
    }
  };
}

export interface Measured {
  readonly rate: number;
  /** Events per second of the process's CPU time (GC helper threads included): less moved by
   * other work on the machine than the wall-clock rate, which counts time waiting for a CPU. */
  readonly cpuRate: number;
  readonly nsPerEvent: number;
  readonly matchesPerEvent: number;
  readonly evaluationsPerEvent: number;
  /** Evaluations per event of each rule, in the timed rounds. */
  readonly perRule: ReadonlyMap<string, number>;
}

/** RuleSet.match over the events, round after round for `seconds` of matching, after two warm-up rounds. */
export function measure(set: RuleSet, events: readonly Record<string, unknown>[], seconds: number, restamp: (events: readonly Record<string, unknown>[]) => void): Measured {
  // Warm up, so the compiled closures are optimised before timing.
  for (let i = 0; i < 2; i++) {
    restamp(events);
    for (const e of events) set.match(e);
  }
  const before = new Map(set.stats().map((s) => [s.id, s.evaluations]));
  let count = 0;
  let matches = 0;
  let elapsedMs = 0;
  let cpuUs = 0;
  while (elapsedMs < seconds * 1000) {
    restamp(events);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const e of events) matches += set.match(e).length;
    elapsedMs += performance.now() - started;
    const used = process.cpuUsage(cpu);
    cpuUs += used.user + used.system;
    count += events.length;
  }
  const elapsed = elapsedMs / 1000;
  const perRule = new Map(set.stats().map((s) => [s.id, (s.evaluations - (before.get(s.id) ?? 0)) / count]));
  const evaluations = [...perRule.values()].reduce((a, b) => a + b, 0);
  return { rate: count / elapsed, cpuRate: count / (cpuUs / 1e6), nsPerEvent: (elapsed * 1e9) / count, matchesPerEvent: matches / count, evaluationsPerEvent: evaluations, perRule };
}
