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
}

export interface DropReport {
  readonly component: DropComponent;
  readonly hook: string;
  readonly reason: string;
  readonly count: number;
  readonly since: string;
}

export class DropReporter {
  private readonly reported = new Map<string, number>();
  private since = new Date();

  /** The reports for counters that grew since the previous call. */
  diff(counts: Iterable<DropCount>, now = new Date()): DropReport[] {
    const out: DropReport[] = [];
    const since = this.since.toISOString();
    for (const { component, hook, reason, total } of counts) {
      const key = `${component}/${hook}/${reason}`;
      const previous = this.reported.get(key) ?? 0;
      // A counter that went down was started afresh (a restarted plugin, rebuilt outputs).
      const delta = total >= previous ? total - previous : total;
      this.reported.set(key, total);
      if (delta <= 0) continue;
      out.push({ component, hook, reason, count: delta, since });
    }
    this.since = now;
    return out;
  }
}
