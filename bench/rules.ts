/**
 * The rule engine's throughput on one core: events per second through RuleSet.match, with
 * about 100 rules of the kinds a default pack holds (stateless rules on exec, network, DNS and
 * file events, a few on any action, a few correlation rules), on a realistic mix of events built
 * from the schema's examples with variations (mostly exec, then connects, DNS and file events).
 * The same rules without the action index run in the same process, for comparison.
 *
 *   npx tsc -p . && node dist/bench/rules.js [SECONDS_PER_CASE=2]
 *
 * Target for the final system: at least 200,000 events/s on one core.
 */
import { cpus, loadavg } from 'node:os';
import { exampleEvent, type EventAction } from '../src/common/events/index.js';
import { formatProblem, loadRules } from '../src/rules/index.js';
import { measure, restamper } from './rule-measure.js';

const secondsPerCase = Number(process.argv[2] ?? '2');

// ----- rules -----

const tools = ['nc', 'ncat', 'socat', 'nmap', 'masscan', 'zmap', 'hydra', 'john', 'hashcat', 'tcpdump', 'tshark', 'strace', 'gdb', 'ltrace', 'insmod', 'rmmod', 'modprobe', 'chattr', 'setcap', 'xmrig', 'minerd', 'kubectl', 'crictl', 'nsenter', 'unshare', 'mkfifo', 'ssh-keygen', 'base32', 'xxd', 'lsmod'];
const rules: string[] = [];
const rule = (id: string, severity: string, condition: string, extra = '') =>
  rules.push(`  - id: ${id}\n    title: ${id.replace(/_/g, ' ')}\n    severity: ${severity}\n    tags: [attack.execution]\n    condition: ${JSON.stringify(condition)}\n    output: "${id}: {process.executable} ({process.command_line}) by {process.user.name} under {process.parent.name}"\n${extra}`);

tools.forEach((t) => rule(`tool_${t.replace(/-/g, '_')}`, 'medium', `event.action = exec and process.name = ${t} and not ancestor.name in (ansible, salt-minion)`));
rule('shell_from_web', 'high', 'event.action = exec and process.name in shells and spawned_by_web');
rule('download_from_web', 'high', 'event.action = exec and process.name in downloaders and spawned_by_web');
rule('pipe_to_shell', 'high', 'event.action = exec and process.name in shells and ancestor.args contains "| sh"');
rule('curl_to_ip', 'medium', 'event.action = exec and process.name in downloaders and process.command_line matches "https?://[0-9]{1,3}(\\\\.[0-9]{1,3}){3}"');
rule('base64_decode', 'medium', 'event.action = exec and process.name = base64 and process.args in ("-d", "--decode")');
rule('python_socket', 'high', 'event.action = exec and process.name startswith python and process.command_line contains "socket" and process.command_line contains "subprocess"');
rule('perl_socket', 'high', 'event.action = exec and process.name = perl and process.command_line icontains "socket"');
rule('dev_tcp', 'high', 'event.action = exec and process.command_line contains "/dev/tcp/"');
rule('exec_from_tmp', 'medium', 'event.action = exec and process.executable startswith (/tmp/, /var/tmp/, /dev/shm/)');
rule('exec_hidden', 'medium', 'event.action = exec and process.executable glob "*/.*"');
rule('fileless_exec', 'high', 'event.action = exec and hades.process.fileless = true');
rule('chmod_exec_tmp', 'low', 'event.action = exec and process.name = chmod and process.args contains "+x" and process.args startswith (/tmp/, /dev/shm/)');
rule('crontab_edit', 'medium', 'event.action = exec and process.name = crontab and process.args in ("-e", "-r")');
rule('user_added', 'medium', 'event.action = exec and process.name in (useradd, adduser, usermod)');
rule('passwd_change', 'low', 'event.action = exec and process.name in (passwd, chpasswd)');
rule('history_cleared', 'medium', 'event.action = exec and process.command_line icontains "history -c"');
rule('iptables_flush', 'medium', 'event.action = exec and process.name in (iptables, ip6tables, nft) and process.args in ("-F", "flush")');
rule('sudo_list', 'low', 'event.action = exec and process.name = sudo and process.args = "-l"');
rule('shadow_read', 'high', 'event.action = exec and process.args in (/etc/shadow, /etc/gshadow) and not process.name in (passwd, chpasswd, useradd)');
rule('docker_privileged', 'high', 'event.action = exec and process.name = docker and process.args = "--privileged"');
rule('kernel_module_tool', 'medium', 'event.action = exec and process.name in (insmod, modprobe) and not process.parent.name = systemd-modules-load');
rule('root_shell_tty', 'low', 'event.action = exec and process.name in shells and process.user.id = 0 and hades.process.tty startswith pts/');
rule('ssh_from_web', 'high', 'event.action = exec and process.name in (ssh, scp, sftp) and spawned_by_web');
rule('find_suid', 'medium', 'event.action = exec and process.name = find and process.args in ("-perm", "/4000", "-4000")');
rule('recon_burst', 'low', 'event.action = exec and process.name in (whoami, id, uname, hostname, ifconfig) and spawned_by_web');
rule('systemctl_unit_tmp', 'medium', 'event.action = exec and process.name = systemctl and process.args startswith /tmp/');
rule('ld_preload_env', 'high', 'event.action = exec and process.command_line contains "LD_PRELOAD="');
rule('miner_args', 'high', 'event.action = exec and process.command_line icontains ("stratum+tcp", "--donate-level", "cryptonight")');
rule('wget_quiet_exec', 'medium', 'event.action = exec and process.name = wget and process.args = "-q" and process.args contains "-O-"');
rule('interactive_root_web', 'high', 'event.action = exec and process.interactive = true and process.user.name = www-data');
rule('apt_unusual_parent', 'low', 'event.action = exec and process.name in (apt, apt-get, dpkg) and ancestor.name in (php-fpm8.2, nginx)');
rule('tar_etc', 'low', 'event.action = exec and process.name = tar and process.args startswith /etc');
rule('openssl_client', 'medium', 'event.action = exec and process.name = openssl and process.args = s_client');
rule('awk_system', 'medium', 'event.action = exec and process.name in (awk, gawk, mawk) and process.command_line contains "system("');
rule('exec_deleted_binary', 'high', 'event.action = exec and process.executable endswith " (deleted)"');
rule('args_truncated_long', 'low', 'event.action = exec and hades.process.args_truncated = true and process.args_count > 1000');
rule('stdin_socket_shell', 'critical', 'event.action = exec and process.name in shells and hades.process.stdio.stdin.type = socket');
rule('exec_regex_obfuscation', 'medium', 'event.action = exec and process.command_line matches "(\\\\\\\\x[0-9a-f]{2}){8,}"');
rule('curl_user_agent_empty', 'low', 'event.action = exec and process.name = curl and process.args = "-A" and process.args = ""');
// Network
rule('reverse_shell_port', 'high', 'event.action = connect and destination.port in (4444, 1337, 31337, 9001)');
rule('mining_pool_port', 'high', 'event.action = connect and destination.port in (3333, 5555, 7777, 14444)');
rule('web_outbound_public', 'medium', 'event.action = connect and spawned_by_web and not destination.ip in_cidr (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8)');
rule('shell_connect', 'high', 'event.action = connect and process.name in shells');
rule('ssh_outbound_web', 'high', 'event.action = connect and destination.port = 22 and spawned_by_web');
rule('smtp_from_nonmail', 'low', 'event.action = connect and destination.port in (25, 465, 587) and not process.name in (postfix, exim4, sendmail)');
rule('tor_ports', 'medium', 'event.action = connect and destination.port in (9050, 9150)');
rule('irc_ports', 'medium', 'event.action = connect and destination.port in (6667, 6697)');
rule('listen_high_port_shell', 'high', 'event.action = listen and process.name in (nc, ncat, socat, bash, sh)');
rule('accept_from_public_db', 'medium', 'event.action = accept and destination.port in (3306, 5432, 6379) and not source.ip in_cidr (10.0.0.0/8, 192.168.0.0/16)');
rule('connect_metadata', 'medium', 'event.action = connect and destination.ip = 169.254.169.254 and not process.name in (cloud-init, google_guest_agent)');
rule('failed_connect_burst_src', 'low', 'event.action = connect and event.outcome = failure and destination.port = 22');
// DNS
rule('dns_oast', 'high', 'event.action = dns_query and dns.question.name iendswith (.oast.fun, .oast.pro, .interact.sh, .burpcollaborator.net)');
rule('dns_tunnel_services', 'medium', 'event.action = dns_query and dns.question.name iendswith (.ngrok.io, .ngrok-free.app, .trycloudflare.com, .duckdns.org)');
rule('dns_pastebin', 'low', 'event.action = dns_query and dns.question.name iendswith (pastebin.com, paste.ee, transfer.sh)');
rule('dns_txt_by_shell', 'medium', 'event.action = dns_query and dns.question.type = TXT and process.name in shells');
rule('dns_long_label', 'medium', 'event.action = dns_query and dns.question.name matches "[a-z0-9]{50,}\\\\."');
rule('dns_mining_pool', 'high', 'event.action = dns_query and dns.question.name icontains ("pool.", "xmr", "monero")');
rule('dns_malformed', 'medium', 'event.action = dns_query and hades.dns.malformed exists');
rule('dns_from_web', 'low', 'event.action = dns_query and spawned_by_web and not dns.question.name endswith .internal');
// Files
rule('cron_file', 'medium', 'event.action in (file_create, file_rename) and file.path startswith (/etc/cron, /var/spool/cron)');
rule('ld_so_preload', 'critical', 'event.action in (file_create, file_rename) and file.path = /etc/ld.so.preload');
rule('authorized_keys', 'high', 'event.action in (file_create, file_rename) and file.path glob "*/.ssh/authorized_keys*"');
rule('passwd_written', 'high', 'event.action in (file_create, file_rename) and file.path in (/etc/passwd, /etc/shadow, /etc/sudoers) and not process.name in (useradd, usermod, passwd, visudo)');
rule('systemd_unit_written', 'medium', 'event.action in (file_create, file_rename) and file.path startswith (/etc/systemd/system/, /lib/systemd/system/)');
rule('log_deleted', 'high', 'event.action = file_delete and file.path startswith /var/log/ and not process.name in (logrotate, journald)');
rule('setuid_chmod', 'high', 'event.action = file_chmod and hades.file.setuid = true');
rule('made_executable_tmp', 'medium', 'event.action = file_chmod and hades.file.made_executable = true and file.path startswith (/tmp/, /dev/shm/)');
rule('executable_created_tmp', 'medium', 'event.action = file_create and hades.file.executable = true and file.path startswith /tmp/');
rule('profile_written', 'medium', 'event.action in (file_create, file_rename) and file.path glob "/home/*/.bashrc"');
// Other kinds
rule('ptrace_attach', 'high', 'event.action = ptrace and hades.ptrace.request in (attach, seize) and not process.name in (gdb, strace)');
rule('memfd', 'high', 'event.action = memfd_create and not process.name in (java, node)');
rule('module_loaded', 'medium', 'event.action = module_load and not hades.module.name in (overlay, br_netfilter)');
rule('privilege_root_without_setuid', 'critical', 'event.action = privilege_change and hades.privilege.reason = root_without_setuid');
rule('tamper_any', 'critical', 'event.action = tamper');
// Any action
rule('host_in_quarantine', 'info', 'host.name in (quarantine-01, quarantine-02)');
rule('container_escape_tools', 'high', 'container.id exists and process.name in (nsenter, unshare, mount)');
rule('www_data_anything_odd', 'low', 'process.user.name = www-data and process.executable startswith /home/');

const correlations = `
  - id: recon_then_download
    type: sequence
    title: recon then download
    severity: high
    within: 60s
    by: host.name
    steps:
      - condition: event.action = exec and process.name in (whoami, id, uname)
      - condition: event.action = exec and process.name in downloaders
  - id: web_shell_then_connect
    type: sequence
    title: web shell then connect
    severity: critical
    within: 2m
    by: [host.name, process.tree]
    steps:
      - condition: event.action = exec and process.name in shells and spawned_by_web
      - condition: event.action = connect and destination.port in (4444, 1337)
  - id: dns_flood_per_process
    type: threshold
    title: many DNS names from one process
    severity: medium
    condition: event.action = dns_query
    distinct: dns.question.name
    count: 50
    within: 10s
    by: process.entity_id
  - id: many_failed_connects
    type: threshold
    title: many failed connects
    severity: low
    condition: event.action = connect and event.outcome = failure
    count: 20
    within: 10s
    by: [host.name, process.entity_id]
`;

const text = `lists:
  shells: [sh, bash, dash, zsh, ksh, csh, tcsh, fish]
  downloaders: [curl, wget, fetch, aria2c]
  web_servers: [nginx, apache2, httpd, php-fpm8.2, php-fpm, lighttpd, tomcat, node]
macros:
  spawned_by_web: ancestor.name in web_servers
rules:
${rules.join('')}${correlations}`;

// ----- events -----

let seed = 7;
function random(n: number): number {
  // 32-bit multiplication (a double product past 2^53 loses the low bits), and the high bits of
  // the state: an LCG's low bits repeat with a short period.
  seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
  return (seed >>> 16) % n;
}
function pick<T>(items: readonly T[]): T {
  return items[random(items.length)]!;
}

const names = ['bash', 'sh', 'ls', 'cat', 'grep', 'sed', 'awk', 'python3', 'node', 'curl', 'git', 'ps', 'systemctl', 'sleep', 'date', 'tar', 'gzip', 'find', 'sudo', 'whoami', 'id', 'chmod', 'cp', 'mv', 'rm', 'nc', 'ssh', 'openssl', 'base64', 'php'];
const parents = ['bash', 'sh', 'systemd', 'sshd', 'cron', 'php-fpm8.2', 'nginx', 'containerd-shim', 'python3', 'make'];
const argSets = [['-la', '/var/www'], ['-s', 'https://example.com/api'], ['status', 'nginx'], ['-c', 'echo hello; ls /tmp | wc -l'], ['-rf', '/tmp/build'], ['clone', 'https://github.com/x/y'], ['-e', 'print 1'], ['/etc/hosts'], ['-d'], ['--version'], ['60'], ['aux']];
const hosts = Array.from({ length: 50 }, (_, i) => `web-${String(i).padStart(2, '0')}`);
const domains = ['api.github.com', 'deb.debian.org', 'x1y2.oast.fun', 'metadata.google.internal', 'registry.npmjs.org', 'www.example.com', 'a'.repeat(30) + '.cdn.example', 'updates.example.net'];
const paths = ['/tmp/x', '/etc/cron.d/job', '/home/alice/.ssh/authorized_keys', '/var/log/auth.log', '/etc/passwd', '/tmp/build/out.o', '/etc/systemd/system/x.service', '/srv/app/cache/1'];

function makeProcess(i: number): Record<string, unknown> {
  const name = pick(names);
  const args = [name, ...pick(argSets)];
  const depth = 1 + random(4);
  const ancestors = Array.from({ length: depth }, (_, k) => ({ pid: 1000 + k, entity_id: `h:${1000 + k}:1`, name: k === 0 ? pick(parents) : pick(parents), executable: `/usr/bin/${pick(parents)}`, args: [pick(parents), '-c', 'something'] }));
  return {
    pid: 4000 + (i % 30000),
    entity_id: `h:${4000 + (i % 30000)}:${i}`,
    name,
    executable: `/usr/bin/${name}`,
    args,
    command_line: args.join(' '),
    working_directory: '/srv/app',
    user: random(5) === 0 ? { id: '0', name: 'root' } : { id: '33', name: 'www-data' },
    parent: { pid: 1000, entity_id: 'h:1000:1', name: ancestors[0]!.name, executable: ancestors[0]!.executable },
    _ancestors: ancestors,
  };
}

function makeEvent(i: number): Record<string, unknown> {
  const r = random(100);
  const action: EventAction = r < 55 ? 'exec' : r < 62 ? 'fork' : r < 70 ? 'exit' : r < 82 ? 'connect' : r < 90 ? 'dns_query' : r < 97 ? pick(['file_create', 'file_rename', 'file_delete', 'file_chmod'] as const) : pick(['accept', 'listen', 'ptrace'] as const);
  const e = structuredClone(exampleEvent(action));
  e['@timestamp'] = new Date(Date.parse('2026-11-28T08:00:00.000Z') + i * 5).toISOString();
  (e['host'] as Record<string, unknown>)['name'] = pick(hosts);
  const { _ancestors, ...proc } = makeProcess(i);
  if (e['process']) {
    e['process'] = { ...e['process'], ...proc };
    e['hades'] = { ...(e['hades'] ?? {}), ancestors: _ancestors, ancestry: 'x' };
  }
  if (action === 'connect') {
    e['destination'] = { ip: random(3) === 0 ? '10.0.0.7' : `203.0.113.${random(255)}`, port: pick([80, 443, 443, 443, 22, 53, 5432, 4444]) };
    if (random(20) === 0) (e['event'] as Record<string, unknown>)['outcome'] = 'failure';
  }
  if (action === 'dns_query') (e['dns'] as { question: { name: string } }).question.name = pick(domains);
  if (action.startsWith('file_')) (e['file'] as { path: string }).path = pick(paths);
  return e;
}

// ----- run -----

/** Event time keeps moving forward across rounds, as in a real stream (not timed). */
const restamp = restamper(Date.parse('2026-11-28T08:00:00.000Z'));


const compileStarted = performance.now();
const loaded = loadRules([{ name: 'bench.yaml', text }]);
const compileMs = performance.now() - compileStarted;
const errors = loaded.problems.filter((p) => p.severity === 'error');
if (errors.length > 0) {
  for (const p of errors) console.error(formatProblem(p));
  throw new Error('the benchmark rules do not load');
}
const unindexed = loadRules([{ name: 'bench.yaml', text }], { indexByAction: false }).ruleSet;

const mixed = Array.from({ length: 20_000 }, (_, i) => makeEvent(i));
const only = (action: string) => mixed.filter((e) => (e['event'] as { action: string }).action === action);
const cases: [string, readonly Record<string, unknown>[]][] = [
  ['mix', mixed],
  ['exec only', only('exec')],
  ['connect only', only('connect')],
  ['dns_query only', only('dns_query')],
];

console.log(
  `${loaded.ruleSet.rules.length} rules (${loaded.ruleSet.rules.filter((r) => r.type !== 'rule').length} correlation) compiled in ${compileMs.toFixed(1)} ms; Node ${process.version}, one core; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`,
);
console.log('| events | index | events/s | ns/event | rule evaluations/event | matches/event |');
console.log('|---|---|---:|---:|---:|---:|');
for (const [label, events] of cases) {
  for (const [indexLabel, set] of [
    ['action + value', loaded.ruleSet],
    ['none', unindexed],
  ] as const) {
    const r = measure(set, events, secondsPerCase, restamp);
    console.log(`| ${label} | ${indexLabel} | ${Math.round(r.rate).toLocaleString('en')} | ${r.nsPerEvent.toFixed(0)} | ${r.evaluationsPerEvent.toFixed(1)} | ${r.matchesPerEvent.toFixed(3)} |`);
  }
}
const c = loaded.ruleSet.correlationStats();
console.log(`\ncorrelation state: ${c.keys} groups held, ${c.evicted} evicted, ${c.expired} expired, ${c.fired} fired`);
