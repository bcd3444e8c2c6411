/**
 * Real daemons whose logs the log collector reads, for integration tests as root: sshd on a port
 * of its own (password logins, one authorized key for root), SSH clients that fail and succeed,
 * and journald run on its own with /dev/log pointing to it. Each daemon is a child the caller
 * stops; `stopAll` kills what is left.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from './agent.js';

const NEEDED = ['/usr/sbin/sshd', '/usr/sbin/rsyslogd', '/usr/bin/sudo', '/usr/bin/ssh', '/usr/bin/logger', '/usr/bin/setpriv', '/lib/systemd/systemd-journald', '/usr/bin/journalctl'];

/** Why the daemons cannot be used here, or false. */
export function logDaemonsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const missing = NEEDED.filter((p) => !existsSync(p));
  if (missing.length > 0) return `missing ${missing.join(', ')} (npm test's bootstrap installs them)`;
  try {
    lstatSync('/dev/log');
    return 'a syslog daemon already owns /dev/log on this machine';
  } catch {
    return false;
  }
}

const children = new Set<ChildProcess>();

export function daemon(command: string, args: readonly string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}

export function stopAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Sshd {
  readonly port: number;
  readonly key: string;
  readonly child: ChildProcess;
  /** One connection that tries `tries` wrong passwords for `user`. */
  wrongPassword(user: string, tries: number): void;
  /** A login as root with the authorized key (asserted to succeed). */
  loginWithKey(): void;
}

/** sshd in `dir` on a free port: host key, password logins, one authorized key for root. */
export async function startSshd(dir: string): Promise<Sshd> {
  const port = await freePort();
  const key = path.join(dir, 'client_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  execFileSync('cp', [`${key}.pub`, path.join(dir, 'authorized_keys')]);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'UsePAM no', 'PermitRootLogin prohibit-password', 'MaxAuthTries 6', ''].join('\n'),
  );
  const child = daemon('/usr/sbin/sshd', ['-D', '-f', config]);
  await waitFor('sshd listening', () => spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0, 10_000, 100);
  const askpass = path.join(dir, 'askpass');
  writeFileSync(askpass, '#!/bin/sh\necho not-the-password\n');
  chmodSync(askpass, 0o755);
  const options = ['-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
  return {
    port,
    key,
    child,
    wrongPassword(user, tries) {
      spawnSync('setsid', ['ssh', ...options, '-o', 'PreferredAuthentications=password', '-o', `NumberOfPasswordPrompts=${tries}`, `${user}@127.0.0.1`, 'true'], {
        env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: 'none' },
        stdio: 'ignore',
        timeout: 20_000,
      });
    },
    loginWithKey() {
      const result = spawnSync('ssh', [...options, '-o', 'BatchMode=yes', '-i', key, 'root@127.0.0.1', 'true'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(result.status, 0, `ssh with the key: ${result.stderr}`);
    },
  };
}

export interface Journald {
  stop(): Promise<void>;
}

/**
 * journald run on its own, with /dev/log pointing to it; stop() also removes the link and the
 * sockets it left (those that were not there before).
 */
export async function startJournald(): Promise<Journald> {
  const sockets = ['socket', 'dev-log', 'stdout', 'io.systemd.journal'].map((n) => `/run/systemd/journal/${n}`).filter((f) => !existsSync(f));
  const child = daemon('/lib/systemd/systemd-journald', []);
  await waitFor('journald', () => existsSync('/run/systemd/journal/dev-log') && existsSync('/run/systemd/journal/socket'), 10_000);
  symlinkSync('/run/systemd/journal/dev-log', '/dev/log');
  return {
    async stop() {
      rmSync('/dev/log', { force: true });
      await stopDaemon(child);
      for (const f of sockets) rmSync(f, { force: true });
    },
  };
}
