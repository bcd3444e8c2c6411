/**
 * Where the journal follower starts reading, against a stand-in journalctl on PATH that records
 * its arguments: after a kept cursor; without one, after the journal's last entry (its cursor
 * asked for first), from the start of an empty journal, and with `--lines=0` (said) when the last
 * entry's cursor cannot be read. The real journalctl is exercised in test/integration/logs.test.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { JournalFollower, type JournalEntry } from '../../src/agent/logs/journal.js';
import { waitFor } from '../helpers/agent.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-journal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const entry = (cursor: string, user: string) => JSON.stringify({ __CURSOR: cursor, __REALTIME_TIMESTAMP: '1764000000000000', SYSLOG_IDENTIFIER: 'sshd', _PID: '42', _UID: '0', MESSAGE: `Failed password for ${user} from 192.0.2.7 port 4242 ssh2` });
const ENTRY = entry('s=next', 'root');

/**
 * A journalctl that answers `--lines=1` with `last`, and `--follow` with `first` (when given: the
 * entry at the cursor it was started at) then one sshd entry, then waits.
 */
function standIn(name: string, last: string, first = ''): { bin: string; calls: string } {
  const bin = path.join(dir, name);
  const calls = path.join(bin, 'calls');
  mkdirSync(bin);
  const script = `#!/bin/sh
echo "$*" >> ${calls}
case "$*" in
  *--follow*) ${first ? `echo '${first}'; ` : ''}echo '${ENTRY}'; exec sleep 60 ;;
  *) printf '%s' '${last}' ;;
esac
`;
  writeFileSync(path.join(bin, 'journalctl'), script);
  chmodSync(path.join(bin, 'journalctl'), 0o755);
  return { bin, calls };
}

async function run(name: string, last: string, cursor?: string, first?: string): Promise<{ calls: string[]; entries: JournalEntry[]; problems: string[]; cursor: string | undefined }> {
  const { bin, calls } = standIn(name, last, first);
  const entries: JournalEntry[] = [];
  const problems: string[] = [];
  const saved = process.env['PATH'];
  process.env['PATH'] = `${bin}:${saved ?? ''}`;
  const follower = new JournalFollower({ ...(cursor ? { cursor } : {}), onEntry: (e) => entries.push(e), onProblem: (m) => problems.push(m) });
  try {
    follower.start();
    await waitFor('the stand-in entry', () => entries.length > 0, 10_000);
  } finally {
    process.env['PATH'] = saved;
    await follower.close();
  }
  return { calls: readFileSync(calls, 'utf8').trim().split('\n'), entries, problems, cursor: follower.cursor };
}

describe('journal follower start', () => {
  it('follows from a kept cursor without asking for the end, and does not take its entry again', async () => {
    const r = await run('kept', '', 's=kept', entry('s=kept', 'already-read'));
    assert.equal(r.calls.length, 1);
    assert.match(r.calls[0]!, /^--follow .*--cursor=s=kept SYSLOG_IDENTIFIER=sshd /);
    assert.deepEqual(
      r.entries.map((e) => e.message),
      ['Failed password for root from 192.0.2.7 port 4242 ssh2'],
    );
    assert.equal(r.cursor, 's=next');
    assert.deepEqual(r.problems, []);
  });

  it('without a cursor, follows after the cursor of the journal\'s last entry, of any program', async () => {
    const r = await run('end', `${JSON.stringify({ __CURSOR: 's=last' })}\n`);
    assert.equal(r.calls.length, 2);
    assert.match(r.calls[0]!, /^--lines=1 --output=json /);
    assert.ok(!r.calls[0]!.includes('SYSLOG_IDENTIFIER'), 'the last entry of the whole journal');
    // The last entry is another program's: the first entry that comes is new, and taken.
    assert.match(r.calls[1]!, /^--follow .*--cursor=s=last SYSLOG_IDENTIFIER=sshd /);
    assert.equal(r.entries[0]!.message, 'Failed password for root from 192.0.2.7 port 4242 ssh2');
    assert.deepEqual(r.problems, []);
  });

  it('follows an empty journal from its start, not its last ten entries', async () => {
    const r = await run('empty', '');
    assert.equal(r.calls.length, 2);
    assert.match(r.calls[1]!, /^--follow .*--no-tail SYSLOG_IDENTIFIER=sshd /);
    assert.ok(!/--lines|--cursor/.test(r.calls[1]!), r.calls[1]);
  });

  it('falls back to --lines=0, and says so, when the last entry\'s cursor cannot be read', async () => {
    const r = await run('garbage', 'not json\n');
    assert.match(r.calls[1]!, /^--follow .*--lines=0 SYSLOG_IDENTIFIER=sshd /);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0]!, /did not give the cursor/);
  });
});
