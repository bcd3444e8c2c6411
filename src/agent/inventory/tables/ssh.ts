/**
 * ssh_configs (the effective sshd settings) and authorized_keys (who may log in with which key).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { glob, isFolder, lines, readAccounts, readText, statPath, Warn } from './software-files.js';

const SSHD_CONFIG = '/etc/ssh/sshd_config';
/** sshd's own bound on nested Include (SERVCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;

/** Keywords, in sshd's spelling, by their lower-case form (sshd matches them without regard to case). */
const KEYWORDS = new Map(
  [
    'AcceptEnv', 'AddressFamily', 'AllowAgentForwarding', 'AllowGroups', 'AllowStreamLocalForwarding', 'AllowTcpForwarding', 'AllowUsers',
    'AuthenticationMethods', 'AuthorizedKeysCommand', 'AuthorizedKeysCommandUser', 'AuthorizedKeysFile', 'AuthorizedPrincipalsCommand',
    'AuthorizedPrincipalsCommandUser', 'AuthorizedPrincipalsFile', 'Banner', 'CASignatureAlgorithms', 'ChallengeResponseAuthentication',
    'ChrootDirectory', 'Ciphers', 'ClientAliveCountMax', 'ClientAliveInterval', 'Compression', 'DebianBanner', 'DenyGroups', 'DenyUsers',
    'DisableForwarding', 'ExposeAuthInfo', 'ForceCommand', 'GatewayPorts', 'GSSAPIAuthentication', 'GSSAPICleanupCredentials',
    'HostbasedAcceptedAlgorithms', 'HostbasedAuthentication', 'HostbasedUsesNameFromPacketOnly', 'HostCertificate', 'HostKey',
    'HostKeyAgent', 'HostKeyAlgorithms', 'IgnoreRhosts', 'IgnoreUserKnownHosts', 'Include', 'IPQoS', 'KbdInteractiveAuthentication',
    'KerberosAuthentication', 'KexAlgorithms', 'ListenAddress', 'LoginGraceTime', 'LogLevel', 'MACs', 'Match', 'MaxAuthTries',
    'MaxSessions', 'MaxStartups', 'PasswordAuthentication', 'PermitEmptyPasswords', 'PermitListen', 'PermitOpen', 'PermitRootLogin',
    'PermitTTY', 'PermitTunnel', 'PermitUserEnvironment', 'PermitUserRC', 'PidFile', 'Port', 'PrintLastLog', 'PrintMotd',
    'PubkeyAcceptedAlgorithms', 'PubkeyAcceptedKeyTypes', 'PubkeyAuthentication', 'PubkeyAuthOptions', 'RekeyLimit', 'RevokedKeys',
    'SecurityKeyProvider', 'SetEnv', 'StreamLocalBindMask', 'StreamLocalBindUnlink', 'StrictModes', 'Subsystem', 'SyslogFacility',
    'TCPKeepAlive', 'TrustedUserCAKeys', 'UseDNS', 'UsePAM', 'VersionAddendum', 'X11DisplayOffset', 'X11Forwarding', 'X11UseLocalhost',
    'XAuthLocation',
  ].map((k) => [k.toLowerCase(), k]),
);

/** Keywords that may be given several times, every occurrence counting (the others: the first value obtained wins). */
const ACCUMULATING = new Set(['port', 'listenaddress', 'hostkey', 'hostcertificate', 'acceptenv', 'subsystem', 'allowusers', 'denyusers', 'allowgroups', 'denygroups', 'setenv']);

/**
 * OpenSSH's compiled-in defaults (9.x) for the security-relevant keywords, reported when the
 * configuration does not set them. NULL for the allow and deny lists: no restriction.
 */
export const SSHD_DEFAULTS: readonly (readonly [string, string | null])[] = [
  ['Port', '22'],
  ['AddressFamily', 'any'],
  ['PermitRootLogin', 'prohibit-password'],
  ['PasswordAuthentication', 'yes'],
  ['PubkeyAuthentication', 'yes'],
  ['PermitEmptyPasswords', 'no'],
  ['KbdInteractiveAuthentication', 'yes'],
  ['HostbasedAuthentication', 'no'],
  ['IgnoreRhosts', 'yes'],
  ['UsePAM', 'no'],
  ['AuthenticationMethods', 'any'],
  ['AuthorizedKeysFile', '.ssh/authorized_keys .ssh/authorized_keys2'],
  ['StrictModes', 'yes'],
  ['MaxAuthTries', '6'],
  ['MaxSessions', '10'],
  ['LoginGraceTime', '120'],
  ['X11Forwarding', 'no'],
  ['AllowTcpForwarding', 'yes'],
  ['AllowAgentForwarding', 'yes'],
  ['AllowStreamLocalForwarding', 'yes'],
  ['GatewayPorts', 'no'],
  ['PermitTunnel', 'no'],
  ['PermitUserEnvironment', 'no'],
  ['PermitTTY', 'yes'],
  ['ClientAliveInterval', '0'],
  ['LogLevel', 'INFO'],
  ['AllowUsers', null],
  ['DenyUsers', null],
  ['AllowGroups', null],
  ['DenyGroups', null],
];

export interface SshdSetting {
  readonly key: string;
  readonly value: string | null;
  /** file:line, or "default". */
  readonly source: string;
  /** The Match criteria of the block it is in; null outside Match blocks. */
  readonly match: string | null;
}

interface ParseState {
  readonly settings: SshdSetting[];
  /** Keys already obtained, per Match block (first obtained value wins). */
  readonly obtained: Set<string>;
  /** Files being read, for include loops. */
  readonly stack: string[];
}

/** Splits "Key value", "Key=value" and "Key = value". */
function splitKeyword(line: string): [string, string] | undefined {
  const match = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
  if (!match) return /^\S+$/.test(line) ? [line, ''] : undefined;
  return [match[1] ?? '', (match[2] ?? '').trim()];
}

async function readConfigFile(ctx: CollectContext, file: string, state: ParseState, inheritedMatch: string | null): Promise<void> {
  const stats = await statPath(ctx, file, 'sshd configuration skipped');
  if (!stats) return;
  const id = `${stats.dev}:${stats.ino}`;
  if (state.stack.includes(id)) {
    ctx.warn(Warn.loop, 'Include loop: the file includes itself, directly or through others; not read again', file);
    return;
  }
  if (state.stack.length >= MAX_INCLUDE_DEPTH) {
    ctx.warn(Warn.loop, `Include nested deeper than ${MAX_INCLUDE_DEPTH} files; not read`, file);
    return;
  }
  const text = await readText(ctx, file);
  if (text === undefined) return;
  state.stack.push(id);
  let match = inheritedMatch;
  for (const [index, raw] of lines(text).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = splitKeyword(line);
    if (!parts) continue;
    const [word, value] = parts;
    const lower = word.toLowerCase();
    const source = `${file}:${index + 1}`;
    if (lower === 'match') {
      // "Match all" is a block like the others: its settings override the global ones for every connection.
      match = value;
      continue;
    }
    if (lower === 'include') {
      // Relative includes are relative to /etc/ssh; each argument is a glob.
      for (const pattern of value.split(/\s+/).filter(Boolean)) {
        const absolute = pattern.startsWith('/') ? pattern : `/etc/ssh/${pattern}`;
        const files = /[*?[]/.test(absolute) ? await glob(ctx, absolute) : [absolute];
        for (const included of files) await readConfigFile(ctx, included, state, match);
      }
      continue;
    }
    if (value === '') {
      ctx.warn(Warn.malformed, `line ${index + 1}: ${word} has no value; skipped`, file);
      continue;
    }
    const key = KEYWORDS.get(lower) ?? word;
    const slot = `${match ?? ''}\0${lower}`;
    if (!ACCUMULATING.has(lower) && state.obtained.has(slot)) continue;
    state.obtained.add(slot);
    state.settings.push({ key, value, source, match });
  }
  state.stack.pop();
}

/** The settings sshd would use, in file order (Include expanded), followed by the defaults of keys left unset. */
export async function readSshdSettings(ctx: CollectContext): Promise<SshdSetting[]> {
  if (!(await statPath(ctx, SSHD_CONFIG, 'sshd configuration skipped'))) return [];
  const state: ParseState = { settings: [], obtained: new Set(), stack: [] };
  await readConfigFile(ctx, SSHD_CONFIG, state, null);
  for (const [key, value] of SSHD_DEFAULTS) {
    if (!state.obtained.has(`\0${key.toLowerCase()}`)) state.settings.push({ key, value, source: 'default', match: null });
  }
  return state.settings;
}

export const sshConfigs: TableSpec = {
  name: 'ssh_configs',
  description:
    'The effective OpenSSH server settings: /etc/ssh/sshd_config with its Include files (globs; loops refused), the first value obtained winning as in sshd, then OpenSSH\'s defaults for the security-relevant keywords left unset. Settings inside Match blocks are rows with the block\'s criteria. Empty when sshd_config is absent.',
  columns: [
    { name: 'key', type: 'TEXT', description: 'Keyword, in sshd\'s spelling (e.g. PermitRootLogin).' },
    { name: 'value', type: 'TEXT', description: 'Value as written; NULL for a default meaning "not set" (AllowUsers and the like: no restriction).', nullable: true },
    { name: 'source', type: 'TEXT', description: 'file:line where it is set, or "default".' },
    { name: 'match', type: 'TEXT', description: 'Criteria of the Match block it is in (e.g. "User backup", "all"); NULL for global settings. A Match block\'s settings override the global ones for the connections it matches.', nullable: true },
  ],
  examples: [
    { description: 'How root and passwords may log in.', sql: "SELECT key, value, source FROM ssh_configs WHERE match IS NULL AND key IN ('PermitRootLogin', 'PasswordAuthentication', 'PermitEmptyPasswords')" },
    { description: 'Settings that apply only to some users or addresses.', sql: 'SELECT match, key, value, source FROM ssh_configs WHERE match IS NOT NULL' },
  ],
  generate: async (ctx): Promise<Row[]> => (await readSshdSettings(ctx)).map((s) => ({ ...s })),
};

/** Key types sshd accepts in authorized_keys, certificates included. */
const KEY_TYPE = /^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(256|384|521)|sk-ecdsa-sha2-nistp256@openssh\.com|sk-ssh-ed25519@openssh\.com)(-cert-v01@openssh\.com)?$/;

export interface AuthorizedKey {
  readonly keyType: string;
  /** SHA256:base64 without padding, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  readonly comment: string | null;
  readonly options: string | null;
}

/** The options field: up to the first white space outside double quotes. */
function takeOptions(line: string): [string, string] {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) return [line.slice(0, i), line.slice(i).trimStart()];
  }
  return [line, ''];
}

/** Parses one authorized_keys line; a string says why it is not a key. */
export function parseAuthorizedKey(line: string): AuthorizedKey | string {
  let rest = line.trim();
  let options: string | null = null;
  const first = rest.split(/\s+/, 1)[0] ?? '';
  if (!KEY_TYPE.test(first)) {
    [options, rest] = takeOptions(rest);
    if (rest === '') return 'no key after the options';
  }
  const [keyType = '', blob = '', ...comment] = rest.split(/\s+/);
  if (!KEY_TYPE.test(keyType)) return `unknown key type ${JSON.stringify(keyType.slice(0, 40))}`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return 'the key is not base64';
  const bytes = Buffer.from(blob, 'base64');
  // The blob starts with its own type as an SSH string: a uint32 length, then the name.
  const nameLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  if (nameLength < 0 || 4 + nameLength > bytes.length || bytes.toString('latin1', 4, 4 + nameLength) !== keyType) return `the key data is not a ${keyType} key`;
  const fingerprint = `SHA256:${createHash('sha256').update(bytes).digest('base64').replace(/=+$/, '')}`;
  return { keyType, fingerprint, comment: comment.length > 0 ? comment.join(' ') : null, options };
}

const DEFAULT_KEY_FILES = ['.ssh/authorized_keys', '.ssh/authorized_keys2'];

/**
 * The AuthorizedKeysFile patterns sshd may use: the global setting (or its default), and those of
 * every Match block, since a key in any of them lets someone in for the connections it matches.
 * "none" names no file.
 */
export function keyFilePatterns(settings: readonly SshdSetting[]): string[] {
  // Without an sshd_config (no settings at all, not even defaults), sshd's defaults.
  if (settings.length === 0) return [...DEFAULT_KEY_FILES];
  const patterns = new Set<string>();
  for (const setting of settings) {
    if (setting.key !== 'AuthorizedKeysFile' || setting.value === null) continue;
    for (const pattern of setting.value.split(/\s+/)) if (pattern !== '' && pattern.toLowerCase() !== 'none') patterns.add(pattern);
  }
  return [...patterns];
}

/**
 * A pattern for one account, as sshd expands it: %% a percent sign, %h the home, %u the user
 * name, %U the numeric user id; a path that is still relative is taken from the home. Undefined
 * for a token sshd does not know there (it refuses the file too).
 */
export function expandKeyFile(pattern: string, account: { name: string; uid: number; home: string }): string | undefined {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%') {
      out += c;
      continue;
    }
    const token = pattern[++i];
    if (token === '%') out += '%';
    else if (token === 'h') out += account.home;
    else if (token === 'u') out += account.name;
    else if (token === 'U') out += String(account.uid);
    else return undefined;
  }
  return path.posix.normalize(out.startsWith('/') ? out : path.posix.join(account.home, out));
}

export async function readAuthorizedKeys(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const homes = new Map<string, boolean>();
  const patterns = keyFilePatterns(await readSshdSettings(ctx));
  for (const pattern of patterns) {
    if (expandKeyFile(pattern, { name: 'u', uid: 0, home: '/' }) === undefined) ctx.warn(Warn.malformed, `AuthorizedKeysFile ${JSON.stringify(pattern)} has a token sshd does not expand; skipped`, SSHD_CONFIG);
  }
  for (const account of await readAccounts(ctx)) {
    if (!account.home.startsWith('/')) continue;
    // Several accounts may share a home: each of them accepts its keys, so each gets the rows.
    if (!homes.has(account.home)) homes.set(account.home, await isFolder(ctx, account.home));
    const homeExists = homes.get(account.home) === true;
    const files = new Set<string>();
    for (const pattern of patterns) {
      const file = expandKeyFile(pattern, account);
      // sshd reads files in a home only when the home is there; a file elsewhere (/etc/ssh/keys/%u) always.
      if (file !== undefined && (homeExists || !file.startsWith(`${account.home.replace(/\/+$/, '')}/`))) files.add(file);
    }
    for (const file of files) {
      if (!(await statPath(ctx, file, 'authorized keys skipped'))) continue;
      const text = await readText(ctx, file);
      if (text === undefined) continue;
      for (const [index, raw] of lines(text).entries()) {
        const line = raw.trim();
        if (line === '' || line.startsWith('#')) continue;
        const key = parseAuthorizedKey(line);
        if (typeof key === 'string') {
          ctx.warn(Warn.malformed, `line ${index + 1}: ${key}; skipped`, file);
          continue;
        }
        rows.push({ user: account.name, path: file, line: index + 1, key_type: key.keyType, key: key.fingerprint, comment: key.comment, options: key.options });
      }
    }
  }
  return rows;
}

export const authorizedKeys: TableSpec = {
  name: 'authorized_keys',
  description: 'Public keys that may log in over SSH, for every account in /etc/passwd: the files sshd_config\'s AuthorizedKeysFile names, globally and in Match blocks (%h, %u, %U and %% expanded, relative paths from the home), or ~/.ssh/authorized_keys and ~/.ssh/authorized_keys2 when it is not set. Lines that are not keys are skipped with a warning.',
  columns: [
    { name: 'user', type: 'TEXT', description: 'The account the key logs in as.' },
    { name: 'path', type: 'TEXT', description: 'The authorized_keys file.' },
    { name: 'line', type: 'INTEGER', description: 'Line number.' },
    { name: 'key_type', type: 'TEXT', description: 'Key type, e.g. ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, or a -cert-v01@openssh.com certificate.' },
    { name: 'key', type: 'TEXT', description: 'Fingerprint as `ssh-keygen -l` prints it (SHA256:base64).' },
    { name: 'comment', type: 'TEXT', description: 'Comment after the key (often user@host).', nullable: true },
    { name: 'options', type: 'TEXT', description: 'Options before the key (from="...", command="...", no-pty...), as written.', nullable: true },
  ],
  examples: [
    { description: 'Keys that let someone in as root.', sql: "SELECT key_type, key, comment, options FROM authorized_keys WHERE user = 'root'" },
    { description: 'The same key accepted by several accounts.', sql: 'SELECT key, group_concat(user) AS users FROM authorized_keys GROUP BY key HAVING count(DISTINCT user) > 1' },
  ],
  generate: (ctx) => readAuthorizedKeys(ctx),
};
