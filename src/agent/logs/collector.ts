/**
 * The log collector (the built-in plugin `logs`): SSH logins and sudo use read from the system's
 * logs, as `ssh_login` and `sudo` events.
 *
 * Sources (plugins.logs.source):
 * - `journal`: the systemd journal through journalctl (./journal.ts); entries are trusted by
 *   their sender's uid or executable as journald records them.
 * - `files`: syslog files (plugins.logs.files, by default /var/log/auth.log and /var/log/secure),
 *   followed across rotation (./follow-file.ts). A syslog file does not say who sent a line: any
 *   local user can write one that looks like sshd's (docs/architecture.md).
 * - `auto` (the default): the journal when journald runs, else the files. Not both: on a host
 *   where rsyslog copies the journal into auth.log, every line would come twice.
 *
 * Where each source stopped (file positions, the journal cursor) is kept in
 * `STATE_DIR/logs-state.json`, so that a restarted collector reads what was logged meanwhile,
 * once. On its very first start a source begins at its end: history is not replayed.
 */
import { readOwnFile } from '../../runtime/regular-file.js';
import path from 'node:path';
import { PluginFrame } from '../../common/plugins/frames.js';
import { writePrivateFile } from '../../runtime/private-file.js';
import { memoryNow } from '../../runtime/memory.js';
import { readConfig, type PluginIo } from '../plugins/plugin-main.js';
import { FileFollower, type FilePosition } from './follow-file.js';
import { JournalFollower, journalAvailable, type JournalEntry } from './journal.js';
import { MESSAGE_CHARS, parseAuthMessage, parseSyslogLine, LOG_PROGRAMS } from './parse.js';

export const LOGS_PLUGIN = 'logs';

export interface LogsConfig {
  readonly source: 'auto' | 'journal' | 'files';
  readonly files: readonly string[];
  readonly poll_ms: number;
  readonly max_line_bytes: number;
  /** Folder of logs-state.json; absent: positions are not kept across restarts. */
  readonly state_dir?: string;
}


export interface LogsStats {
  source: 'journal' | 'files' | 'none';
  /** Lines (or journal entries) of the programs read. */
  lines: number;
  /** Lines of a file that are not syslog lines. */
  unparsed: number;
  /** Lines of other programs (files hold everything logged to the auth facility). */
  other_programs: number;
  events: number;
  [key: string]: unknown;
}

export interface State {
  files?: Record<string, FilePosition>;
  journal?: string;
}

const STATE_FILE = 'logs-state.json';
/** A batch is sent once it holds this much (frames carry at most 1 MiB). */
const BATCH_BYTES = 256 * 1024;
/** The state is written at most this often (and at stop). */
const SAVE_EVERY_MS = 2000;

/**
 * The state kept in `dir`; what is missing or malformed is left out (that source starts at its
 * end, as on a first start: lines logged while the collector was down are not read), and
 * `onProblem` says so; a file not there yet is no problem.
 */
export function loadState(dir: string | undefined, onProblem: (message: string) => void = () => undefined): State {
  if (!dir) return {};
  const stateFile = path.join(dir, STATE_FILE);
  let value: unknown;
  try {
    value = JSON.parse(readOwnFile(stateFile));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') onProblem(`${stateFile} ${code ? `cannot be read (${code})` : 'is not JSON'}: every log is read from its end, as on a first start`);
    return {};
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    onProblem(`${stateFile} does not hold an object: every log is read from its end, as on a first start`);
    return {};
  }
  const raw = value as Record<string, unknown>;
  const files: Record<string, FilePosition> = {};
  const given = raw['files'];
  if (given && typeof given === 'object' && !Array.isArray(given)) {
    for (const [file, p] of Object.entries(given as Record<string, unknown>)) {
      if (!p || typeof p !== 'object' || !path.isAbsolute(file)) continue;
      const q = p as Record<string, unknown>;
      const counts = [q['dev'], q['ino'], q['offset']].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
      const head = q['head'];
      if (!counts || (head !== undefined && (typeof head !== 'string' || !/^(?:[0-9a-f]{2}){0,64}$/.test(head)))) {
        onProblem(`${stateFile}: the position kept for ${file} is malformed: that log is read from its end`);
        continue;
      }
      files[file] = { dev: q['dev'] as number, ino: q['ino'] as number, offset: q['offset'] as number, ...(typeof head === 'string' ? { head } : {}) };
    }
  }
  const journal = raw['journal'];
  return { files, ...(typeof journal === 'string' && journal.length > 0 && journal.length < 1024 && !journal.includes('\n') ? { journal } : {}) };
}

/** The CONFIG frame's configuration, checked; a string says what is wrong. */
export function validLogsConfig(raw: unknown): LogsConfig | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'config must be an object';
  const c = raw as Record<string, unknown>;
  const source = c['source'] ?? 'auto';
  if (source !== 'auto' && source !== 'journal' && source !== 'files') return 'source must be auto, journal or files';
  const files = c['files'] ?? ['/var/log/auth.log', '/var/log/secure'];
  if (!Array.isArray(files) || files.length > 64 || !files.every((f) => typeof f === 'string' && path.isAbsolute(f))) return 'files must be at most 64 absolute paths';
  const int = (key: string, fallback: number, min: number, max: number): number | string => {
    const v = c[key] ?? fallback;
    return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : `${key} must be an integer from ${min} to ${max}`;
  };
  const poll = int('poll_ms', 1000, 50, 60_000);
  const maxLine = int('max_line_bytes', 16_384, 256, 1_048_576);
  if (typeof poll === 'string') return poll;
  if (typeof maxLine === 'string') return maxLine;
  const stateDir = c['state_dir'];
  if (stateDir !== undefined && (typeof stateDir !== 'string' || !path.isAbsolute(stateDir))) return 'state_dir must be an absolute path';
  return {
    source,
    files: files as string[],
    poll_ms: poll,
    max_line_bytes: maxLine,
    ...(typeof stateDir === 'string' ? { state_dir: stateDir } : {}),
  };
}

export class LogCollector {
  readonly stats: LogsStats = { source: 'none', lines: 0, unparsed: 0, other_programs: 0, events: 0 };
  private config: LogsConfig | undefined;
  private files: FileFollower[] = [];
  private journal: JournalFollower | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private batch: string[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  /** Batches written that the pipe has not taken yet: sources wait for them (bounded memory). */
  private backlog: Promise<void>[] = [];
  private dirty = false;
  private lastWhere = '';
  /**
   * Where each source stopped, as last loaded or saved: sources not in use keep theirs, and the
   * journal's cursor survives a reconfiguration without state_dir.
   */
  private kept: State = {};
  private keptFrom: string | undefined;
  private reconfigured: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly io: PluginIo,
    private readonly version: string,
  ) {}

  hello(): Promise<void> {
    return this.json(PluginFrame.hello, { protocol: 1, plugin: LOGS_PLUGIN, version: this.version, programs: LOG_PROGRAMS });
  }

  onFrame(type: number, payload: Uint8Array): void {
    if (type === PluginFrame.config) this.onConfig(payload);
    else if (type === PluginFrame.statsRequest) void this.sendStats();
    // other frames are skipped (docs/plugins.md)
  }

  /** Stops every source (journalctl has exited when this resolves) and keeps where each stopped. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.reconfigured;
    await this.closeSources();
    this.flush();
  }

  private onConfig(payload: Uint8Array): void {
    const accepted = readConfig(this.io, payload, validLogsConfig);
    if (!accepted) return;
    const { requestId, config } = accepted;
    void this.json(PluginFrame.ack, { request_id: requestId, ok: true });
    // The sources of the previous configuration are stopped (journalctl has exited, positions
    // kept) before the new ones start from where they stopped.
    this.reconfigured = this.reconfigured.then(async () => {
      await this.closeSources();
      if (this.stopped) return;
      this.config = config;
      this.openSources(config);
    });
  }

  private openSources(config: LogsConfig): void {
    // The file is read when the folder changes (at start), then the state lives here.
    if (config.state_dir !== this.keptFrom) {
      this.kept = { ...loadState(config.state_dir, (message) => this.log('warn', message, 'HADES_ERR_LOG_SOURCE')), ...(this.kept.journal ? { journal: this.kept.journal } : {}) };
      this.keptFrom = config.state_dir;
    }
    const state = this.kept;
    const useJournal = config.source === 'journal' || (config.source === 'auto' && journalAvailable());
    if (useJournal) {
      this.stats.source = 'journal';
      this.journal = new JournalFollower({
        ...(state.journal ? { cursor: state.journal } : {}),
        onEntry: (entry) => this.onJournalEntry(entry),
        onProblem: (message) => this.log('warn', message, 'HADES_ERR_LOG_SOURCE'),
      });
      this.journal.start();
    } else {
      this.stats.source = 'files';
      this.files = config.files.map((file) => new FileFollower(file, { maxLineBytes: config.max_line_bytes, ...(state.files?.[file] ? { position: state.files[file] } : {}), onLine: (line) => this.onFileLine(file, line), onProblem: (message) => this.log('warn', message, 'HADES_ERR_LOG_SOURCE') }));
      const poll = async (): Promise<void> => {
        let more = false;
        for (const f of this.files) more = f.poll() || more;
        // The state is written (and fsynced) only when a position moved: an idle host costs a stat per file per poll.
        const where = this.files.map((f) => JSON.stringify(f.position() ?? null)).join();
        if (where !== this.lastWhere) {
          this.lastWhere = where;
          this.dirty = true;
        }
        this.flush();
        // A reader that is behind (a flood) reads on as soon as the agent has taken the last batches.
        await this.drained();
        if (this.pollTimer === undefined) return; // closed meanwhile
        this.pollTimer = setTimeout(() => void poll(), more ? 0 : config.poll_ms);
      };
      this.pollTimer = setTimeout(() => void poll(), 0);
    }
    this.saveTimer = setInterval(() => this.saveState(), SAVE_EVERY_MS);
  }

  private async closeSources(): Promise<void> {
    clearTimeout(this.pollTimer);
    clearInterval(this.saveTimer);
    this.pollTimer = undefined;
    this.saveTimer = undefined;
    for (const f of this.files) f.close();
    // journalctl has exited before the cursor is kept: nothing taken after it is left out.
    await this.journal?.close();
    this.dirty = true;
    this.saveState();
    this.journal = undefined;
    this.files = [];
  }

  private onFileLine(file: string, line: string): void {
    const parsed = parseSyslogLine(line);
    if (!parsed) {
      this.stats.unparsed++;
      return;
    }
    if (!LOG_PROGRAMS.includes(parsed.program)) {
      this.stats.other_programs++;
      return;
    }
    this.take(parsed.time, parsed.program, parsed.pid, parsed.message, { source: 'file', file });
  }

  private onJournalEntry(entry: JournalEntry): void {
    this.dirty = true;
    this.take(entry.time, entry.program, entry.pid, entry.message, { source: 'journal' });
  }

  private take(time: number, program: string, pid: number | undefined, message: string, origin: { source: 'file' | 'journal'; file?: string }): void {
    this.stats.lines++;
    const parsed = parseAuthMessage(program, message);
    if (!parsed) return;
    const hades = (parsed.body['hades'] ?? {}) as Record<string, unknown>;
    const event = {
      '@timestamp': new Date(Number.isFinite(time) ? time : Date.now()).toISOString(),
      ...parsed.body,
      event: { ...(parsed.body['event'] as Record<string, unknown>), action: parsed.action },
      hades: { ...hades, log: { ...origin, program, ...(pid !== undefined ? { pid } : {}), message: message.slice(0, MESSAGE_CHARS) } },
    };
    this.stats.events++;
    const line = JSON.stringify(event);
    this.batch.push(line);
    this.batchBytes += line.length + 1;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const lines = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const sent = this.io.send(PluginFrame.events, this.encoder.encode(`${lines.join('\n')}\n`));
    this.backlog.push(sent);
    if (this.backlog.length === 1) this.journal?.pause();
    void sent.then(() => {
      this.backlog = this.backlog.filter((p) => p !== sent);
      if (this.backlog.length === 0) this.journal?.resume();
    });
  }

  /** Resolves once every batch sent so far has been taken by the pipe. */
  private async drained(): Promise<void> {
    while (this.backlog.length > 0) await Promise.all(this.backlog);
  }

  /** Takes the sources' positions into the kept state, and writes it when it changed. */
  private saveState(): void {
    const files: Record<string, FilePosition> = { ...this.kept.files };
    for (const f of this.files) {
      const p = f.position();
      if (p) files[f.path] = p;
    }
    const journal = this.journal?.cursor ?? this.kept.journal;
    this.kept = { files, ...(journal ? { journal } : {}) };
    const dir = this.config?.state_dir;
    if (!dir || !this.dirty) return;
    this.dirty = false;
    try {
      writePrivateFile(path.join(dir, STATE_FILE), JSON.stringify(this.kept));
    } catch (error) {
      this.log('warn', `cannot keep the log positions in ${dir}: ${(error as Error).message}`, 'HADES_ERR_LOG_SOURCE');
    }
  }

  private sendStats(): Promise<void> {
    const memory = memoryNow();
    const files = Object.fromEntries(this.files.map((f) => [f.path, { ...f.counters }]));
    return this.json(PluginFrame.stats, { ...this.stats, ...(this.journal ? { journal: { ...this.journal.counters } } : {}), ...(this.files.length ? { files } : {}), rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed });
  }

  private log(level: 'error' | 'warn' | 'info', msg: string, code?: string): void {
    void this.json(PluginFrame.log, { level, msg: msg.slice(0, 1024), ...(code ? { code } : {}) });
  }

  private json(type: number, value: unknown): Promise<void> {
    return this.io.send(type, this.encoder.encode(JSON.stringify(value)));
  }
}
