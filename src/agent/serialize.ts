/**
 * Turns an event into one NDJSON line (without the newline). Every output and the spool use
 * this one function, so an event is serialised once however many outputs it goes to.
 *
 * The line is always exactly what `JSON.stringify(event)` gives. exec, fork and exit events made
 * by EventBuilder (known by their shared `event.category` array) take a hand-written path,
 * because they are most of what an exec storm costs: their key order is known, and the parts
 * they share with other events are serialised once and spliced in. Those are the builder's
 * frozen objects (host, agent, users and groups, capability lists, ancestor entries,
 * containers), cached by identity, and runs of members that consecutive events repeat (parent, ancestors, stdio,
 * credentials, cgroup...), remembered with the values they were made from. The rest is
 * concatenated around them; each string is checked as it goes, and an event with a string to
 * escape, a number that is not finite, a value of another type than the builder's or a member
 * the builder does not make (an enricher's) goes to `JSON.stringify` whole. So does every other
 * event.
 *
 * The hand-written path follows the object literals of builder.ts member by member: a member
 * added there must be added here too (an exec event with one member more would take the slow
 * path). test/unit/serialize.test.ts compares both byte for byte over the driver fixtures and
 * records with every optional field, and checks that the builder's events take this path.
 */
import type { HadesEvent } from '../common/events/index.js';
import { EXEC_CATEGORY } from './builder.js';

// Loose views of the builder's object literals: only what the hand-written path reads.
type Strings = readonly string[];
interface Common {
  '@timestamp': string;
  event: { id: string; kind: string; category: Strings; type: Strings; action: string; sequence: number };
  host: object;
  agent: object;
}
interface ParentRef {
  pid: number;
  entity_id?: string | undefined;
  name?: string | undefined;
  executable?: string | undefined;
  args?: Strings | undefined;
  command_line?: string | undefined;
  start?: string | undefined;
}
interface Lineage {
  backend: string;
  process?: HadesProcess | undefined;
  ancestors?: readonly object[] | undefined;
  ancestry?: string | undefined;
  missing?: Strings | undefined;
}
interface HadesProcess {
  tty?: string | undefined;
  stdio?: { stdin: object; stdout: object; stderr: object } | undefined;
  cgroup?: { id: number; path?: string | undefined } | undefined;
  namespaces?: { pid: number; mnt: number } | undefined;
  paths_cut?: Strings | undefined;
  script?: string | undefined;
  args_truncated: boolean;
  args_bytes: number;
  args_source?: string | undefined;
  fileless: boolean;
  login_uid?: number | undefined;
  credentials?: Record<'uid' | 'gid' | 'euid' | 'egid' | 'suid' | 'sgid' | 'fsuid' | 'fsgid', number> | undefined;
  hash_status?: string | undefined;
  copy_of?: { path: string; name: string } | undefined;
}
interface ExecProcess {
  pid: number;
  entity_id: string;
  name: string;
  executable?: string | undefined;
  args?: Strings | undefined;
  args_count?: number | undefined;
  command_line?: string | undefined;
  working_directory?: string | undefined;
  start?: string | undefined;
  interactive?: boolean | undefined;
  thread: { id: number; capabilities?: { effective: Strings } | undefined };
  group_leader?: { pid: number } | undefined;
  session_leader?: { pid: number } | undefined;
  parent?: ParentRef | undefined;
  previous?: readonly object[] | undefined;
  user?: object | undefined;
  group?: object | undefined;
  real_user?: object | undefined;
  real_group?: object | undefined;
  saved_user?: object | undefined;
  saved_group?: object | undefined;
  hash?: { sha256: string } | undefined;
  tty?: { char_device: { major: number; minor: number } } | undefined;
}
interface ForkProcess {
  pid: number;
  entity_id: string;
  name?: string | undefined;
  executable?: string | undefined;
  args?: Strings | undefined;
  command_line?: string | undefined;
  start?: string | undefined;
  parent: ParentRef;
  user?: object | undefined;
  group?: object | undefined;
}
interface ExitProcess {
  pid: number;
  entity_id: string;
  name?: string | undefined;
  executable?: string | undefined;
  args?: Strings | undefined;
  start?: string | undefined;
  end: string;
  exit_code?: number | undefined;
  parent?: { pid: number; entity_id?: string | undefined } | undefined;
}
interface ExecEvent extends Common {
  process: ExecProcess;
  container?: object | undefined;
  hades: Lineage;
}
interface ForkEvent extends Common {
  process: ForkProcess;
  container?: object | undefined;
  hades: Lineage;
}
interface ExitEvent extends Common {
  process: ExitProcess;
  container?: object | undefined;
  hades: Lineage;
}

export function serializeEvent(event: HadesEvent): string {
  const e = event as unknown as Common;
  if (e.event?.category === EXEC_CATEGORY) {
    let line: string | undefined;
    plain = true;
    try {
      line = processLine(e);
    } catch {
      // A value of a type this file does not expect: JSON.stringify knows what to do with it.
      line = undefined;
    }
    if (line !== undefined && plain) return line;
  }
  return JSON.stringify(event);
}

/** The line of a builder's exec, fork or exit event; undefined for any other shape. */
function processLine(e: Common): string | undefined {
  // Members added after the builder (by an enricher) leave the event to JSON.stringify: the
  // objects an enricher would extend (the event, process, hades, and below, hades.process and
  // process.parent) must have the builder's count of members.
  const action = e.event.action;
  if (action === 'exec') {
    const x = e as ExecEvent;
    return keyCount(x) === 7 && keyCount(x.process) === 23 && keyCount(x.hades) === 5 ? execLine(x) : undefined;
  }
  if (action === 'fork') {
    const x = e as ForkEvent;
    return keyCount(x) === 7 && keyCount(x.process) === 10 && keyCount(x.hades) === 5 ? forkLine(x) : undefined;
  }
  if (action === 'exit') {
    const x = e as ExitEvent;
    const lineage = keyCount(x.hades);
    // hades is the lineage, or only the backend for a process the tree does not know.
    return keyCount(x) === 7 && keyCount(x.process) === 9 && (lineage === 5 || lineage === 1) ? exitLine(x) : undefined;
  }
  return undefined;
}

function keyCount(o: object): number {
  let count = 0;
  for (const key in o) if (key) count++;
  return count;
}

/** The start every process object shares, in the builder's key order: pid to args. */
function processOpening(p: { pid: number; entity_id: string; name?: string | undefined; executable?: string | undefined; args?: readonly string[] | undefined }): string {
  return (
    ',"process":{"pid":' +
    n(p.pid) +
    ',"entity_id":"' +
    t(p.entity_id) +
    (p.name === undefined ? '"' : '","name":"' + t(p.name) + '"') +
    (p.executable === undefined ? '' : ',"executable":"' + t(p.executable) + '"') +
    (p.args === undefined ? '' : ',"args":' + strings(p.args))
  );
}

function execLine(e: ExecEvent): string {
  const p = e.process;
  const caps = p.thread.capabilities;
  return (
    head(e) +
    processOpening(p) +
    (p.args_count === undefined ? '' : ',"args_count":' + n(p.args_count)) +
    (p.command_line === undefined ? '' : ',"command_line":"' + t(p.command_line) + '"') +
    (p.working_directory === undefined ? '' : ',"working_directory":"' + t(p.working_directory) + '"') +
    (p.start === undefined ? '' : ',"start":"' + t(p.start) + '"') +
    (p.interactive === undefined ? '' : ',"interactive":' + b(p.interactive)) +
    ',"thread":{"id":' +
    n(p.thread.id) +
    (caps === undefined ? '}' : ',"capabilities":{"effective":' + shared(caps.effective) + '}}') +
    leaders(p.group_leader, p.session_leader) +
    (p.parent === undefined ? '' : parent(p.parent)) +
    (p.previous === undefined ? '' : ',"previous":' + js(p.previous)) +
    users(p.user, p.group, p.real_user, p.real_group, p.saved_user, p.saved_group) +
    (p.hash === undefined ? '' : hash(p.hash.sha256)) +
    (p.tty === undefined ? '}' : ',"tty":{"char_device":{"major":' + n(p.tty.char_device.major) + ',"minor":' + n(p.tty.char_device.minor) + '}}}') +
    containerOf(e.container) +
    lineageTail(e.hades)
  );
}

/** `,"container":{...}`: the builder's containers are frozen and shared by a cgroup's events. */
function containerOf(container: object | undefined): string {
  return container === undefined ? '' : ',"container":' + (Object.isFrozen(container) ? shared(container) : js(container));
}

function forkLine(e: ForkEvent): string {
  const p = e.process;
  return (
    head(e) +
    processOpening(p) +
    (p.command_line === undefined ? '' : ',"command_line":"' + t(p.command_line) + '"') +
    (p.start === undefined ? '' : ',"start":"' + t(p.start) + '"') +
    parent(p.parent) +
    (p.user === undefined ? '' : ',"user":' + shared(p.user)) +
    (p.group === undefined ? '' : ',"group":' + shared(p.group)) +
    '}' +
    containerOf(e.container) +
    lineageTail(e.hades)
  );
}

function exitLine(e: ExitEvent): string {
  const p = e.process;
  const up = p.parent;
  return (
    head(e) +
    processOpening(p) +
    (p.start === undefined ? '' : ',"start":"' + t(p.start) + '"') +
    ',"end":"' +
    t(p.end) +
    '"' +
    (p.exit_code === undefined ? '' : ',"exit_code":' + n(p.exit_code)) +
    (up === undefined ? '}' : exitParent(up)) +
    containerOf(e.container) +
    lineageTail(e.hades)
  );
}

/** `,"parent":{...}}` of an exit event, and the closing brace of process. */
function exitParent(up: NonNullable<ExitProcess['parent']>): string {
  if (keyCount(up) !== 2) plain = false;
  return ',"parent":{"pid":' + n(up.pid) + (up.entity_id === undefined ? '}}' : ',"entity_id":"' + t(up.entity_id) + '"}}');
}

/** `,"hades":{...}}`: the lineage, and the event's closing brace. */
function lineageTail(h: Lineage): string {
  return (
    ',"hades":{"backend":"' +
    t(h.backend) +
    (h.process === undefined ? '"' : '","process":' + hadesProcess(h.process)) +
    (h.ancestors === undefined ? '' : ancestors(h.ancestors)) +
    (h.ancestry === undefined ? '' : ',"ancestry":"' + t(h.ancestry) + '"') +
    (h.missing === undefined ? '}}' : ',"missing":' + strings(h.missing) + '}}')
  );
}

function hadesProcess(p: HadesProcess): string {
  // An object an enricher might extend, like the event, process and hades.
  if (keyCount(p) !== 14) plain = false;
  // The members before args_truncated (always there) are optional: each ends with its comma.
  return (
    '{' +
    (p.tty === undefined ? '' : '"tty":"' + t(p.tty) + '",') +
    (p.stdio === undefined ? '' : stdio(p.stdio as { stdin: Stdio; stdout: Stdio; stderr: Stdio })) +
    place(p.cgroup, p.namespaces) +
    (p.paths_cut === undefined ? '' : '"paths_cut":' + strings(p.paths_cut) + ',') +
    (p.script === undefined ? '' : '"script":"' + t(p.script) + '",') +
    '"args_truncated":' +
    b(p.args_truncated) +
    ',"args_bytes":' +
    n(p.args_bytes) +
    (p.args_source === undefined ? '' : ',"args_source":"' + t(p.args_source) + '"') +
    ',"fileless":' +
    b(p.fileless) +
    (p.login_uid === undefined ? '' : ',"login_uid":' + n(p.login_uid)) +
    (p.credentials === undefined ? '' : credentials(p.credentials)) +
    (p.hash_status === undefined ? '' : ',"hash_status":"' + t(p.hash_status) + '"') +
    (p.copy_of === undefined ? '}' : copyOf(p.copy_of))
  );
}

/** `,"copy_of":{...}}`, and the closing brace of hades.process. */
function copyOf(c: { path: string; name: string }): string {
  if (keyCount(c) !== 2) plain = false;
  return ',"copy_of":{"path":"' + t(c.path) + '","name":"' + t(c.name) + '"}}';
}

/**
 * False once a string of the current event needs more than quotes (a quote, a backslash, a
 * control character or a surrogate, which JSON.stringify escapes) or a number is not finite
 * (JSON writes null): the event then goes to JSON.stringify whole. Such values are rare, so
 * the hot path writes strings between the quotes of its literals and checks them as it goes.
 */
let plain = true;

/** A string of the current event, checked (see `plain`). */
function t(s: string): string {
  if (typeof s !== 'string') {
    plain = false;
    return '';
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) {
      plain = false;
      break;
    }
  }
  return s;
}

/** A number of the current event, checked (see `plain`). */
function n(value: number): number {
  if (!Number.isFinite(value)) plain = false; // false for anything but a finite number
  return value;
}

/** A boolean of the current event, checked (see `plain`). */
function b(value: boolean): string {
  if (value === true) return 'true';
  if (value !== false) plain = false;
  return 'false';
}

/** `["a","b"]`, checked; anything but strings in it leaves the event to JSON.stringify. */
function strings(list: Strings): string {
  if (!Array.isArray(list)) plain = false;
  if (list.length === 0) return '[]';
  let out = '["';
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    if (typeof s !== 'string') plain = false;
    else out += i === 0 ? t(s) : '","' + t(s);
  }
  return out + '"]';
}

/**
 * JSON of the objects that events share and nobody changes once built (the builder's host and
 * agent, its users and groups, capability lists, ancestor entries, the constant category and
 * type arrays), made once per object.
 */
const sharedJson = new WeakMap<object, string>();

function shared(value: object): string {
  let json = sharedJson.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    sharedJson.set(value, json);
  }
  return json;
}

// Memos for the runs of members that consecutive events repeat: in a storm the same host, users,
// parent, ancestors, stdio and credentials come back event after event, and a hit is one piece
// to join instead of dozens. Each keeps its key values and its JSON, made with JSON.stringify
// (exact whatever the values hold), and is updated only once that JSON is made.
const js = JSON.stringify;

/**
 * The string, flattened: a memo made by concatenation is a tree of pieces (a V8 cons string),
 * which every line containing it would walk again when it is flattened for writing. Converting
 * a string to a number flattens it in place; the number is kept only so that the conversion
 * cannot be optimised away.
 */
function flat(s: string): string {
  flattened = Number(s);
  return s;
}

/** See flat(). */
export let flattened = 0;

/** An optional member for a memo: `,"key":JSON`, or nothing. */
function opt(key: string, value: unknown): string {
  return value === undefined ? '' : `,"${key}":${js(value)}`;
}

let memoKind: { kind: string; category: Strings; type: Strings; action: string; json: string } | undefined;
let memoHost: { host: object; agent: object; json: string } | undefined;

/** `{"@timestamp":...,"event":{...},"host":...,"agent":...`: the common part, left open. */
function head(e: Common): string {
  const ev = e.event;
  let kind = memoKind;
  if (kind === undefined || ev.kind !== kind.kind || ev.category !== kind.category || ev.type !== kind.type || ev.action !== kind.action) {
    const json = flat(`","kind":${js(ev.kind)},"category":${shared(ev.category)},"type":${shared(ev.type)},"action":${js(ev.action)},"sequence":`);
    kind = memoKind = { kind: ev.kind, category: ev.category, type: ev.type, action: ev.action, json };
  }
  let host = memoHost;
  if (host === undefined || e.host !== host.host || e.agent !== host.agent) {
    const json = flat(`},"host":${shared(e.host)},"agent":${shared(e.agent)}`);
    host = memoHost = { host: e.host, agent: e.agent, json };
  }
  return '{"@timestamp":"' + t(e['@timestamp']) + '","event":{"id":"' + t(ev.id) + kind.json + n(ev.sequence) + host.json;
}

type Account = object | undefined;
let memoUsers: { accounts: readonly Account[]; json: string } | undefined;

/** The user and group members of an exec event (shared entries of the builder's caches). */
function users(user: Account, group: Account, realUser: Account, realGroup: Account, savedUser: Account, savedGroup: Account): string {
  const m = memoUsers?.accounts;
  if (m !== undefined && user === m[0] && group === m[1] && realUser === m[2] && realGroup === m[3] && savedUser === m[4] && savedGroup === m[5]) return (memoUsers as { json: string }).json;
  const member = (key: string, value: Account) => (value === undefined ? '' : `,"${key}":${shared(value)}`);
  const json = flat(member('user', user) + member('group', group) + member('real_user', realUser) + member('real_group', realGroup) + member('saved_user', savedUser) + member('saved_group', savedGroup));
  memoUsers = { accounts: [user, group, realUser, realGroup, savedUser, savedGroup], json };
  return json;
}

/** Per parent's ancestor entry: the rest of the list and its JSON, for the parent's children. */
const ancestorsJson = new WeakMap<object, { list: readonly object[]; json: string }>();

/** `,"ancestors":[...]`: frozen entries, one per process, shared by all its descendants' events. */
function ancestors(list: readonly object[]): string {
  if (list.length === 0) return ',"ancestors":[]';
  const first = list[0] as object;
  const known = ancestorsJson.get(first);
  if (known !== undefined && known.list.length === list.length) {
    let same = true;
    for (let i = 1; same && i < list.length; i++) same = known.list[i] === list[i];
    if (same) return known.json;
  }
  let json = ',"ancestors":[';
  for (let i = 0; i < list.length; i++) json += i === 0 ? shared(list[i] as object) : `,${shared(list[i] as object)}`;
  json = flat(`${json}]`);
  ancestorsJson.set(first, { list: list.slice(), json });
  return json;
}

/** Parent references by pid, 8 slots: the workers of a storm take turns, so one entry would not do. */
const memoParents: ({ ref: ParentRef; json: string } | undefined)[] = new Array<undefined>(8).fill(undefined);

/** `,"parent":{...}` of exec and fork events: siblings share all of it but the object. */
function parent(p: ParentRef): string {
  // The builder's seven members, and no other (an enricher's) that the memo's key would miss.
  if (keyCount(p) !== 7) {
    plain = false;
    return '';
  }
  const slot = p.pid & 7;
  const r = memoParents[slot]?.ref;
  if (r !== undefined && p.pid === r.pid && p.entity_id === r.entity_id && p.name === r.name && p.executable === r.executable && p.args === r.args && p.command_line === r.command_line && p.start === r.start) return (memoParents[slot] as { json: string }).json;
  const json = flat(`,"parent":${js(p)}`);
  memoParents[slot] = { ref: { pid: p.pid, entity_id: p.entity_id, name: p.name, executable: p.executable, args: p.args, command_line: p.command_line, start: p.start }, json };
  return json;
}

let memoLeaders: { group: number; session: number; json: string } | undefined;

/** `,"group_leader":{...},"session_leader":{...}`. */
function leaders(group: { pid: number } | undefined, session: { pid: number } | undefined): string {
  if (group === undefined || session === undefined) return opt('group_leader', group) + opt('session_leader', session);
  const m = memoLeaders;
  if (m !== undefined && group.pid === m.group && session.pid === m.session) return m.json;
  const json = flat(opt('group_leader', group) + opt('session_leader', session));
  memoLeaders = { group: group.pid, session: session.pid, json };
  return json;
}

let memoHash: { sha256: string; json: string } | undefined;

/** `,"hash":{...}`: the digest is the hasher's cached string, the same for every exec of a file. */
function hash(sha256: string): string {
  if (memoHash !== undefined && sha256 === memoHash.sha256) return memoHash.json;
  const json = flat(`,"hash":{"sha256":${js(sha256)}}`);
  memoHash = { sha256, json };
  return json;
}

interface Stdio {
  type: string;
  inode?: number | undefined;
  path?: string | undefined;
  socket?: object | undefined;
}

let memoStdio: { key: readonly (string | number | undefined)[]; json: string } | undefined;

/** `"stdio":{...},`: stdin, stdout and stderr, the same for the children of one parent. */
function stdio(io: { stdin: Stdio; stdout: Stdio; stderr: Stdio }): string {
  const { stdin, stdout, stderr } = io;
  // Sockets carry addresses, and a file on stdin its path, that the memo's key leaves out.
  if (stdin.socket !== undefined || stdout.socket !== undefined || stderr.socket !== undefined || stdin.path !== undefined) return `"stdio":${js(io)},`;
  const m = memoStdio?.key;
  if (m !== undefined && stdin.type === m[0] && stdin.inode === m[1] && stdout.type === m[2] && stdout.inode === m[3] && stderr.type === m[4] && stderr.inode === m[5]) return (memoStdio as { json: string }).json;
  const json = flat(`"stdio":${js(io)},`);
  memoStdio = { key: [stdin.type, stdin.inode, stdout.type, stdout.inode, stderr.type, stderr.inode], json };
  return json;
}

type Credentials = NonNullable<HadesProcess['credentials']>;
let memoCreds: { creds: Credentials; json: string } | undefined;

/** `,"credentials":{...}`. */
function credentials(c: Credentials): string {
  const m = memoCreds?.creds;
  if (m !== undefined && c.uid === m.uid && c.gid === m.gid && c.euid === m.euid && c.egid === m.egid && c.suid === m.suid && c.sgid === m.sgid && c.fsuid === m.fsuid && c.fsgid === m.fsgid) return (memoCreds as { json: string }).json;
  const json = flat(`,"credentials":${js(c)}`);
  memoCreds = { creds: { uid: c.uid, gid: c.gid, euid: c.euid, egid: c.egid, suid: c.suid, sgid: c.sgid, fsuid: c.fsuid, fsgid: c.fsgid }, json };
  return json;
}

let memoPlace: { id: number; path: string | undefined; pid: number; mnt: number; json: string } | undefined;

/** `"cgroup":{...},"namespaces":{...},`, each when present. */
function place(cgroup: HadesProcess['cgroup'], ns: HadesProcess['namespaces']): string {
  if (cgroup === undefined || ns === undefined) return (cgroup === undefined ? '' : `"cgroup":${js(cgroup)},`) + (ns === undefined ? '' : `"namespaces":${js(ns)},`);
  const m = memoPlace;
  if (m !== undefined && cgroup.id === m.id && cgroup.path === m.path && ns.pid === m.pid && ns.mnt === m.mnt) return m.json;
  const json = flat(`"cgroup":${js(cgroup)},"namespaces":${js(ns)},`);
  memoPlace = { id: cgroup.id, path: cgroup.path, pid: ns.pid, mnt: ns.mnt, json };
  return json;
}
