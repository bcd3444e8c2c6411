/**
 * Property-based fuzzing of the inventory tables' parsers (src/agent/inventory/tables) with
 * fast-check (test/helpers/fuzz.ts). Files of a host root (passwd, group, shadow, sudoers,
 * crontab, sshd_config, authorized_keys, dpkg status, utmp) written with arbitrary bytes or
 * mutations of valid content are read by the tables as on a host: rows, with skipped lines
 * reported as coded warnings, never an exception, in bounded time.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { QueryContext } from '../../src/agent/inventory/context.js';
import type { TableSpec } from '../../src/agent/inventory/table.js';
import { groupsTable, lastLoginsTable, sudoersTable, usersTable } from '../../src/agent/inventory/tables/accounts.js';
import { crontab } from '../../src/agent/inventory/tables/cron.js';
import { debPackages } from '../../src/agent/inventory/tables/packages-deb.js';
import { parseOsRelease, parseModuleLine, parseMountInfoLine } from '../../src/agent/inventory/tables/system.js';
import { authorizedKeys, parseAuthorizedKey, sshConfigs } from '../../src/agent/inventory/tables/ssh.js';
import { encodeUtmpRecord, parseUtmp, UtmpType } from '../../src/agent/inventory/tables/utmp.js';
import { parseUnitFile } from '../../src/agent/inventory/tables/systemd.js';
import { parseInetTable, parseStat, parseUnixTable } from '../../src/agent/inventory/tables/proc.js';
import { assertInputCode, codedOutcome, codedOutcomeAsync, concatBytes, fieldLines, fuzzParams, mutatedBytes, textLike, utf8 } from '../helpers/fuzz.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-fuzz-inventory-'));
after(() => rmSync(root, { recursive: true, force: true }));
const at = (p: string) => path.join(root, p);
for (const d of ['etc/ssh', 'etc/cron.d', 'etc/sudoers.d', 'root/.ssh', 'home/alice/.ssh', 'var/lib/dpkg', 'var/log', 'var/spool/cron/crontabs', 'proc']) mkdirSync(at(d), { recursive: true });

/** Valid content of each file, the seeds of the mutations. */
const VALID = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  'etc/shadow': 'root:$6$salt$hash:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\nnobody:*:19000::::::\n',
  'etc/group': 'root:x:0:\nsudo:x:27:alice,bob\nalice:x:1000:\n',
  'etc/sudoers': 'Defaults env_reset\nDefaults:alice !requiretty\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: /usr/bin/apt, /bin/systemctl restart *\nUser_Alias ADMINS = alice, bob\n@includedir /etc/sudoers.d\n#include /etc/sudoers.extra\n',
  'etc/crontab': 'SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n@reboot root /usr/local/bin/start.sh\n*/5 1-3 * jan mon-fri alice echo "a % b"\n',
  'etc/ssh/sshd_config': 'Port 22\nPermitRootLogin no\nPasswordAuthentication=yes\nAuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 /etc/ssh/keys/%u\nInclude /etc/ssh/sshd_config.d/*.conf\nMatch User alice\n  X11Forwarding yes\n',
  'root/.ssh/authorized_keys': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@host\nfrom="10.0.0.0/8",command="/bin/true",no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== backup\n# comment\n',
  'var/lib/dpkg/status': 'Package: bash\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nDescription: GNU Bourne Again SHell\n Bash is an sh-compatible command language interpreter.\n\nPackage: curl\nStatus: deinstall ok config-files\nVersion: 7.88.1-10\nSource: curl (7.88.1-10)\n',
};
type Seeded = keyof typeof VALID;
const TABLES: Record<Seeded, TableSpec[]> = {
  'etc/passwd': [usersTable, authorizedKeys, crontab],
  'etc/shadow': [usersTable],
  'etc/group': [groupsTable],
  'etc/sudoers': [sudoersTable],
  'etc/crontab': [crontab],
  'etc/ssh/sshd_config': [sshConfigs, authorizedKeys],
  'root/.ssh/authorized_keys': [authorizedKeys],
  'var/lib/dpkg/status': [debPackages],
};
const reset = () => {
  for (const [file, text] of Object.entries(VALID)) writeFileSync(at(file), text);
  chmodSync(at('etc/crontab'), 0o644);
};
reset();

/** Runs a table over the root as a query would: rows, and warnings with catalogued codes. */
async function checkTable(table: TableSpec): Promise<void> {
  const context = new QueryContext({ root });
  const outcome = await codedOutcomeAsync(() => table.generate(context.forTable(table.name)), 3000, `table ${table.name}`);
  assert.ok('value' in outcome, `${table.name}: a bad file is skipped with a warning, the table does not fail`);
  assert.ok(Array.isArray(outcome.value));
  for (const row of outcome.value) {
    for (const [column, value] of Object.entries(row)) {
      assert.ok(value === null || value === undefined || ['string', 'number', 'bigint'].includes(typeof value), `${table.name}.${column} is a value SQLite takes`);
    }
  }
  for (const w of context.warnings) assertInputCode(w.code, `${table.name} warning (${w.message.slice(0, 100)})`);
}

const seeded = fc.constantFrom(...(Object.keys(VALID) as Seeded[]));

describe('fuzz: inventory files read by the tables', () => {
  it('the valid files give rows', async () => {
    reset();
    for (const table of [usersTable, groupsTable, sudoersTable, crontab, sshConfigs, authorizedKeys, debPackages]) await checkTable(table);
  });

  it('mutations of valid files (byte flips, cuts, splices, huge numbers, bytes that are not UTF-8)', async () => {
    await fc.assert(
      fc.asyncProperty(seeded.chain((file) => fc.tuple(fc.constant(file), mutatedBytes(utf8(VALID[file]), 5))), async ([file, bytes]) => {
        reset();
        writeFileSync(at(file), bytes);
        for (const table of TABLES[file]) await checkTable(table);
      }),
      fuzzParams(100),
    );
  });

  it('arbitrary content, and lines of fields split as each file splits them', async () => {
    const content = (file: Seeded) =>
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        textLike.map(utf8),
        fieldLines(file === 'var/lib/dpkg/status' ? ': ' : file.startsWith('etc/') && !file.includes('ssh') && file !== 'etc/crontab' && file !== 'etc/sudoers' ? ':' : ' ', { min: 1, max: 9 }).map(utf8),
      );
    await fc.assert(
      fc.asyncProperty(seeded.chain((file) => fc.tuple(fc.constant(file), content(file))), async ([file, bytes]) => {
        reset();
        writeFileSync(at(file), bytes);
        for (const table of TABLES[file]) await checkTable(table);
      }),
      fuzzParams(100),
    );
  });

  it('utmp/wtmp records: arbitrary and mutated', async () => {
    const valid = concatBytes(
      encodeUtmpRecord({ type: UtmpType.userProcess, pid: 10, line: 'pts/0', user: 'alice', host: '203.0.113.9', time: 1_700_000_000, address: '203.0.113.9' }),
      encodeUtmpRecord({ type: UtmpType.deadProcess, time: 1_700_000_100 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 800 }), mutatedBytes(valid, 5, 4)), async (bytes) => {
        codedOutcome(() => parseUtmp(Buffer.from(bytes)), 500, 'parseUtmp');
        writeFileSync(at('var/log/wtmp'), bytes);
        await checkTable(lastLoginsTable);
      }),
      fuzzParams(200),
    );
  });

  it('the line parsers themselves (authorized keys, os-release, units, modules, mounts, /proc tables and stat)', () => {
    fc.assert(
      fc.property(fc.oneof(textLike, fieldLines(' ', { min: 1, max: 20 }), fieldLines(':', { min: 1, max: 8 })), (text) => {
        const line = text.split('\n')[0] ?? '';
        codedOutcome(() => parseAuthorizedKey(line), 200, 'parseAuthorizedKey');
        codedOutcome(() => parseOsRelease(text), 200, 'parseOsRelease');
        codedOutcome(() => parseUnitFile(text), 200, 'parseUnitFile');
        codedOutcome(() => parseModuleLine(line), 200, 'parseModuleLine');
        codedOutcome(() => parseMountInfoLine(line), 200, 'parseMountInfoLine');
        codedOutcome(() => parseStat(line), 200, 'parseStat');
        const problems = { malformed: 0 };
        codedOutcome(() => parseInetTable(`  sl  local_address rem_address\n${text}`, 'tcp', 'ipv4', problems), 200, 'parseInetTable');
        codedOutcome(() => parseUnixTable(`Num RefCount Protocol Flags Type St Inode Path\n${text}`, problems), 200, 'parseUnixTable');
      }),
      fuzzParams(500),
    );
  });
});
