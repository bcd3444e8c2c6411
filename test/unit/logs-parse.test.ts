/**
 * The log collector's parsers: syslog lines in both of rsyslog's formats, every sshd and sudo
 * message that makes an event, the ones that do not, user names chosen to mislead, and bad input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJournalLine } from '../../src/agent/logs/journal.js';
import { parseAuthMessage, parseSshd, parseSudo, parseSyslogLine } from '../../src/agent/logs/parse.js';

describe('syslog lines', () => {
  it('reads rsyslog\'s RFC 3339 format', () => {
    const line = parseSyslogLine('2026-11-28T23:20:05.635647+00:00 web-01 sshd[29266]: Failed password for root from 10.0.0.9 port 43488 ssh2');
    assert.deepEqual(line, { time: Date.parse('2026-11-28T23:20:05.635Z'), host: 'web-01', program: 'sshd', pid: 29266, message: 'Failed password for root from 10.0.0.9 port 43488 ssh2' });
  });

  it('reads the traditional format as local time of the nearest past year', () => {
    const now = new Date(2027, 0, 1, 0, 5).getTime();
    const line = parseSyslogLine('Dec 31 23:59:58 web-01 sudo:     bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls', now);
    assert.equal(line?.time, new Date(2026, 11, 31, 23, 59, 58).getTime());
    assert.equal(line?.program, 'sudo');
    assert.equal(line?.pid, undefined);
    const padded = parseSyslogLine('Nov  8 01:02:03 h sshd[7]: x', new Date(2026, 10, 9).getTime());
    assert.equal(padded?.time, new Date(2026, 10, 8, 1, 2, 3).getTime());
  });

  it('refuses what is not a syslog line', () => {
    for (const bad of ['', 'hello', '2026-13-45T99:99:99Z h sshd: x', 'Foo 28 23:20:05 h sshd: x', '2026-11-28T23:20:05Z onlyhost', '\u0000\u0001']) {
      assert.equal(parseSyslogLine(bad), undefined, bad);
    }
  });
});

describe('sshd messages', () => {
  it('makes a login event of each attempt', () => {
    assert.deepEqual(parseSshd('Accepted publickey for root from 127.0.0.1 port 43510 ssh2: ED25519 SHA256:T+6Uu1xSYIDwVgjvCGnh1ubVFth3sGFnksjgfqP2mC4'), {
      event: { outcome: 'success', type: ['start'] },
      source: { ip: '127.0.0.1', port: 43510 },
      user: { name: 'root' },
      hades: { ssh: { method: 'publickey', invalid_user: false, key: 'ED25519 SHA256:T+6Uu1xSYIDwVgjvCGnh1ubVFth3sGFnksjgfqP2mC4' } },
    });
    assert.deepEqual(parseSshd('Failed password for invalid user admin from 2001:db8::7 port 50022 ssh2'), {
      event: { outcome: 'failure', type: ['info'] },
      source: { ip: '2001:db8::7', port: 50022 },
      user: { name: 'admin' },
      hades: { ssh: { method: 'password', invalid_user: true } },
    });
    assert.equal((parseSshd('Accepted keyboard-interactive/pam for alice from 10.1.1.1 port 2 ssh2') as any).hades.ssh.method, 'keyboard-interactive/pam');
    assert.deepEqual((parseSshd('Invalid user oracle from 198.51.100.9 port 40000') as any).hades.ssh, { invalid_user: true });
    assert.deepEqual((parseSshd('Invalid user oracle from 198.51.100.9') as any).source, { ip: '198.51.100.9' });
    assert.equal((parseSshd('Failed publickey for git from 10.0.0.1 port 22 ssh2 [preauth]') as any).hades.ssh.method, 'publickey');
  });

  it('reads keys of failed and certificate logins', () => {
    assert.equal((parseSshd('Failed publickey for root from 10.0.0.1 port 22 ssh2: ED25519 SHA256:abc') as any).hades.ssh.key, 'ED25519 SHA256:abc');
    const certificate = parseSshd(`Accepted publickey for root from 10.0.0.1 port 22 ssh2: ED25519-CERT SHA256:abc ID ${'v'.repeat(300)} (serial 7) CA ED25519 SHA256:def`) as any;
    assert.equal(certificate.hades.ssh.key.length, 256);
    const keyId = parseSshd('Accepted publickey for root from 10.0.0.1 port 22 ssh2: RSA-CERT SHA256:a ID x from 6.6.6.6 port 22: y (serial 1)') as any;
    assert.equal(keyId.source.ip, '10.0.0.1');
  });

  it('keeps the address sshd wrote last, whatever the user name says', () => {
    const e = parseSshd('Invalid user x from 10.0.0.1 port 22 from 203.0.113.66 port 4444') as any;
    assert.equal(e.source.ip, '203.0.113.66');
    assert.equal(e.user.name, 'x from 10.0.0.1 port 22');
    const f = parseSshd('Failed password for invalid user a from 1.1.1.1 port 1 ssh2 from 203.0.113.66 port 5 ssh2') as any;
    assert.equal(f.source.ip, '203.0.113.66');
    assert.equal(f.user.name, 'a from 1.1.1.1 port 1 ssh2');
  });

  it('is not misled by a certificate key id after the address of a failed login', () => {
    // OpenSSH 9.2 with a self-signed certificate (ssh-keygen -I chooses the key id), as logged
    // for a failed publickey attempt: the key id, the client's to choose, follows the address.
    const fp = 'SHA256:ZGWygcWqZssYDq/9aePEtwz/+2somgB0kqUwPn6rA2w';
    for (const user of ['root', 'invalid user bob']) {
      const e = parseSshd(`Failed publickey for ${user} from 127.0.0.1 port 55490 ssh2: RSA-CERT ${fp} ID x from 203.0.113.66 port 22: y (serial 0) CA ED25519 ${fp}`) as any;
      assert.deepEqual(e.source, { ip: '127.0.0.1', port: 55490 }, user);
      assert.equal(e.user.name, user.replace('invalid user ', ''));
      assert.equal(e.hades.ssh.key, `RSA-CERT ${fp} ID x from 203.0.113.66 port 22: y (serial 0) CA ED25519 ${fp}`);
    }
  });

  it('reads the longest user name sshd writes (100 bytes, each escaped as \\ooo)', () => {
    // sshd logs `%.100s` of the name, then escapes each byte it cannot print as four characters.
    const escaped = '\\303\\251'.repeat(50);
    assert.equal(escaped.length, 400);
    const invalid = parseSshd(`Invalid user ${escaped} from 198.51.100.9 port 50022`) as any;
    assert.deepEqual([invalid?.user.name, invalid?.source.ip], [escaped, '198.51.100.9']);
    const failed = parseSshd(`Failed password for invalid user ${escaped} from 198.51.100.9 port 50022 ssh2`) as any;
    assert.deepEqual([failed?.user.name, failed?.source.ip, failed?.hades.ssh.invalid_user], [escaped, '198.51.100.9', true]);
  });

  it('skips what is not an attempt, and addresses that are not IPs', () => {
    for (const message of [
      'Server listening on 0.0.0.0 port 22.',
      'Failed none for invalid user x from 10.0.0.1 port 1 ssh2',
      'Connection closed by authenticating user root 10.0.0.1 port 43488 [preauth]',
      'Disconnected from user root 10.0.0.1 port 43510',
      'error: maximum authentication attempts exceeded for root from 10.0.0.1 port 1 ssh2 [preauth]',
      'Failed password for root from not-an-ip port 22 ssh2',
      'Accepted password for root from 10.0.0.1 port 99999 ssh2',
      'pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1  user=root',
    ]) {
      const e = parseSshd(message) as any;
      assert.ok(e === undefined || e.source.port === undefined, message);
    }
  });
});

describe('sudo messages', () => {
  it('makes an event of a command run or refused', () => {
    assert.deepEqual(parseSudo('    root : PWD=/tmp/lt ; USER=nobody ; COMMAND=/usr/bin/true'), {
      event: { outcome: 'success', type: ['start'] },
      user: { name: 'root', target: { name: 'nobody' } },
      hades: { sudo: { command: '/usr/bin/true', working_directory: '/tmp/lt' } },
    });
    assert.deepEqual(parseSudo('  nobody : user NOT in sudoers ; TTY=pts/3 ; PWD=/work ; USER=root ; COMMAND=/usr/bin/true'), {
      event: { outcome: 'failure', type: ['info'] },
      user: { name: 'nobody', target: { name: 'root' } },
      hades: { sudo: { command: '/usr/bin/true', tty: 'pts/3', working_directory: '/work', reason: 'user NOT in sudoers' } },
    });
    assert.equal((parseSudo('alice : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh') as any).hades.sudo.reason, '3 incorrect password attempts');
  });

  it('keeps a command that contains the separator whole', () => {
    const e = parseSudo('alice : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c echo a ; USER=evil ; echo b') as any;
    assert.equal(e.hades.sudo.command, '/bin/sh -c echo a ; USER=evil ; echo b');
    assert.equal(e.user.target.name, 'root');
  });

  it('is not misled by a working directory or command that looks like its fields', () => {
    // A directory named `COMMAND=` does not hide the event.
    const hidden = parseSudo('  nobody : user NOT in sudoers ; PWD=/tmp/rv/COMMAND= ; USER=root ; COMMAND=/usr/bin/id') as any;
    assert.deepEqual([hidden.event.outcome, hidden.user.target.name, hidden.hades.sudo.command, hidden.hades.sudo.working_directory], ['failure', 'root', '/usr/bin/id', '/tmp/rv/COMMAND=']);
    // A directory that carries a whole fake tail: the first reading, flagged.
    const faked = parseSudo('alice : TTY=pts/1 ; PWD=/tmp/d ; USER=nobody ; COMMAND=/bin/true ; USER=root ; COMMAND=/bin/sh') as any;
    assert.equal(faked.hades.sudo.ambiguous, true);
    // A directory with the separator does not turn a success into a refusal.
    const success = parseSudo('alice : PWD=/tmp/a ; x ; USER=root ; COMMAND=/bin/ls') as any;
    assert.deepEqual([success.event.outcome, success.hades.sudo.reason, success.hades.sudo.working_directory], ['success', undefined, '/tmp/a ; x']);
    // sudo 1.9's optional fields.
    const full = parseSudo('bob : TTY=pts/2 ; PWD=/srv ; USER=postgres ; GROUP=postgres ; TSID=000001 ; ENV=PGDATA=/srv/pg LANG=C ; COMMAND=/usr/bin/psql -c select 1') as any;
    assert.deepEqual([full.user.target.name, full.hades.sudo.command, full.hades.sudo.tty, full.hades.sudo.ambiguous], ['postgres', '/usr/bin/psql -c select 1', 'pts/2', undefined]);
    assert.equal((parseSudo('bob : HOST=web-01 ; TTY=pts/2 ; PWD=/ ; USER=root ; COMMAND=/bin/id') as any).hades.sudo.tty, 'pts/2');
    // The lines syslog splits a long command into are not events of their own.
    assert.equal(parseSudo("root : (command continued) aaaa ' ; COMMAND=/usr/bin/evil'"), undefined);
  });

  it('skips its other messages', () => {
    for (const message of ['pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)', 'pam_unix(sudo:auth): conversation failed', 'unable to resolve host web-01', 'alice : TTY=pts/1 ; PWD=/ ; USER=root']) {
      assert.equal(parseSudo(message), undefined, message);
    }
  });

  it('routes by program', () => {
    assert.equal(parseAuthMessage('sshd-session', 'Accepted password for a from 10.0.0.1 port 1 ssh2')?.action, 'ssh_login');
    assert.equal(parseAuthMessage('sudo', 'a : PWD=/ ; USER=root ; COMMAND=/bin/id')?.action, 'sudo');
    assert.equal(parseAuthMessage('cron', 'Accepted password for a from 10.0.0.1 port 1 ssh2'), undefined);
  });
});

describe('journal entries', () => {
  const entry = (fields: Record<string, unknown>) => JSON.stringify({ __CURSOR: 's=1;i=2', __REALTIME_TIMESTAMP: '1795908035712067', SYSLOG_IDENTIFIER: 'sshd', MESSAGE: 'Failed password for root from 10.1.2.3 port 4444 ssh2', _PID: '812', _UID: '0', ...fields });

  it('takes an entry sent by root, with binary messages', () => {
    assert.deepEqual(parseJournalLine(entry({})), { entry: { time: 1795908035712, program: 'sshd', pid: 812, message: 'Failed password for root from 10.1.2.3 port 4444 ssh2' }, cursor: 's=1;i=2' });
    const binary = parseJournalLine(entry({ MESSAGE: [...Buffer.from('Invalid user \u00ff from 10.0.0.1')] }));
    assert.equal(binary !== undefined && 'entry' in binary && binary.entry.message.startsWith('Invalid user'), true);
  });

  it('refuses an entry any user could have written, the programs\' own executables included', () => {
    assert.deepEqual(parseJournalLine(entry({ _UID: '65534', _EXE: '/usr/bin/logger' })), { untrusted: 's=1;i=2' });
    // A user who runs sshd with a library preloaded that logs a fake login.
    assert.deepEqual(parseJournalLine(entry({ _UID: '1000', _EXE: '/usr/sbin/sshd' })), { untrusted: 's=1;i=2' });
    assert.deepEqual(parseJournalLine(entry({ _UID: undefined })), { untrusted: 's=1;i=2' });
  });

  it('takes a sudo entry from the user it names, sent by sudo, and no other', () => {
    const names = (uid: number) => (uid === 1000 ? 'alice' : uid === 1001 ? 'mallory' : undefined);
    const sudo = (fields: Record<string, unknown>) => parseJournalLine(entry({ SYSLOG_IDENTIFIER: 'sudo', _EXE: '/usr/bin/sudo', MESSAGE: '  alice : user NOT in sudoers ; PWD=/ ; USER=root ; COMMAND=/bin/sh', ...fields }), names);
    assert.equal((sudo({ _UID: '1000' }) as { entry: { program: string } }).entry.program, 'sudo');
    assert.deepEqual(sudo({ _UID: '1001' }), { untrusted: 's=1;i=2' }, 'mallory writing about alice');
    assert.deepEqual(sudo({ _UID: '1000', _EXE: '/usr/bin/logger' }), { untrusted: 's=1;i=2' }, 'not sent by sudo');
    assert.deepEqual(sudo({ _UID: '4242' }), { untrusted: 's=1;i=2' }, 'a uid without a name');
    assert.deepEqual(parseJournalLine(entry({ _UID: '1000', _EXE: '/usr/bin/sudo' }), names), { untrusted: 's=1;i=2' }, 'an sshd line from sudo\'s executable');
  });

  it('refuses what is not an entry', () => {
    for (const bad of ['', 'not json', '[]', '{}', entry({ __CURSOR: undefined }), entry({ MESSAGE: 42 }), entry({ __REALTIME_TIMESTAMP: 'x' }), entry({ MESSAGE: [300] })]) {
      assert.equal(parseJournalLine(bad), undefined, bad);
    }
  });
});
