/**
 * Turns cumulative drop counters (by place and reason) into agent_drop events: each report
 * carries what was lost since the previous one, so the sum of the reports is the total.
 */
export type DropComponent = 'kernel' | 'driver' | 'pipe' | 'agent' | 'spool' | 'output';

export interface DropCount {
  readonly component: DropComponent;
  /** Hook, plugin or output concerned. */
  readonly hook: string;
  readonly reason: string;
  readonly total: number;
  /**
   * When the total was read, if not now: a counter learnt from another process's report (the
   * driver's counters every few seconds) is as old as that report.
   */
  readonly asOf?: Date;
}

export interface DropReport {
  readonly component: DropComponent;
  readonly hook: string;
  readonly reason: string;
  readonly count: number;
  readonly since: string;
}

export class DropReporter {
  /** Each counter's total at its last reading, and when that was. */
  private readonly reported = new Map<string, { total: number; at: Date }>();
  private readonly start = new Date();

  /**
   * The reports for counters that grew since their previous reading. A report's `since` is when
   * the counter was last read below its new total: its drops happened between then and the new
   * reading, however late the report is made (an agent held up reports its blind time as a
   * period from before it, not from the late report).
   */
  diff(counts: Iterable<DropCount>, now = new Date()): DropReport[] {
    const out: DropReport[] = [];
    for (const { component, hook, reason, total, asOf } of counts) {
      const key = `${component}/${hook}/${reason}`;
      const previous = this.reported.get(key);
      const at = asOf ?? now;
      // A reading older than the last one (a late report of a restarted counter) teaches nothing.
      if (previous !== undefined && at < previous.at) continue;
      const before = previous?.total ?? 0;
      // A counter that went down was started afresh (a restarted plugin, rebuilt outputs).
      const delta = total >= before ? total - before : total;
      this.reported.set(key, { total, at });
      if (delta <= 0) continue;
      out.push({ component, hook, reason, count: delta, since: (previous?.at ?? this.start).toISOString() });
    }
    return out;
  }
}
