/** shell_history: commands from the history files in every home. */
import type { CollectContext, Row, TableSpec } from '../table.js';
import { accountHomes, onDisk, readTail, statPath, Warn } from './software-files.js';
import { openRegular } from '../../../runtime/regular-file.js';

type Shell = 'bash' | 'zsh' | 'sh' | 'python';

const HISTORY_FILES: readonly { file: string; shell: Shell }[] = [
  { file: '.bash_history', shell: 'bash' },
  { file: '.zsh_history', shell: 'zsh' },
  { file: '.sh_history', shell: 'sh' },
  { file: '.python_history', shell: 'python' },
];
/** Rows kept per file: the most recent commands. */
export const MAX_HISTORY_LINES = 10_000;
/** Line numbers of a file read from its end are found by counting the lines skipped, up to this many bytes. */
const MAX_COUNTED_BYTES = 256 * 1024 * 1024;

export interface HistoryEntry {
  /** Line number of the command's first line in the file (1-based), relative to `firstLine`. */
  readonly line: number;
  readonly command: string;
  readonly time: number | null;
}

/** zsh writes bytes 0x83-0x9f and some others "metafied": 0x83 then the byte xor 32. */
export function unmetafy(data: Buffer): Buffer {
  if (!data.includes(0x83)) return data;
  const out = Buffer.alloc(data.length);
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i] ?? 0;
    if (byte === 0x83 && i + 1 < data.length) out[n++] = (data[++i] ?? 0) ^ 32;
    else out[n++] = byte;
  }
  return out.subarray(0, n);
}

/**
 * Parses a history file's lines. bash: "#<epoch>" lines (HISTTIMEFORMAT set) time the next command.
 * zsh: ": <epoch>:<duration>;<command>" (EXTENDED_HISTORY) or plain lines; a command continued on
 * the next line ends in a backslash. python: readline's plain lines, or libedit's with a
 * _HiStOrY_V2_ header and \040 for spaces.
 */
export function parseHistory(shell: Shell, lines: readonly string[]): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  let pendingTime: number | null = null;
  const libedit = shell === 'python' && lines[0] === '_HiStOrY_V2_';
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i] ?? '';
    const line = i + 1;
    if (shell === 'bash' && /^#\d{9,11}$/.test(text)) {
      pendingTime = Number(text.slice(1));
      continue;
    }
    if (libedit) {
      if (i === 0) continue;
      text = text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    }
    let time = pendingTime;
    pendingTime = null;
    if (shell === 'zsh') {
      const extended = /^: (\d+):\d+;(.*)$/.exec(text);
      if (extended) {
        time = Number(extended[1]);
        text = extended[2] ?? '';
      }
      while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)}\n${lines[++i] ?? ''}`;
    }
    if (text.trim() === '') continue;
    out.push({ line, command: text, time });
  }
  return out;
}

/** How many lines the first `bytes` of a file hold (counted in pieces, never read whole). */
async function countLines(ctx: CollectContext, hostFile: string, bytes: number): Promise<number | undefined> {
  if (bytes > MAX_COUNTED_BYTES) return undefined;
  let handle;
  try {
    handle = await openRegular(onDisk(ctx, hostFile), true);
    const chunk = Buffer.alloc(1024 * 1024);
    let count = 0;
    for (let at = 0; at < bytes; ) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, bytes - at), at);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) if (chunk[i] === 0x0a) count++;
      at += bytesRead;
    }
    return count;
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function readHistoryFile(ctx: CollectContext, hostFile: string, shell: Shell, user: string, uid: number, rows: Row[]): Promise<void> {
  const stats = await statPath(ctx, hostFile, 'history skipped');
  if (!stats) return;
  const read = await readTail(ctx, hostFile, ctx.maxFileBytes);
  if (!read) return;
  // An account's history is a file of its own: a link it made to another's file (/etc/shadow,
  // root's history) is not read as its commands by an agent running as root.
  if (read.stats.uid !== uid && process.getuid?.() === 0) {
    ctx.warn(Warn.unreadable, `skipped: owned by uid ${read.stats.uid}, not by the account's (${uid})`, hostFile);
    return;
  }
  let data = shell === 'zsh' ? unmetafy(read.data) : read.data;
  // Bytes before the tail are not read: the first, partial line goes too.
  let skippedBytes = read.skipped;
  if (read.skipped > 0) {
    const newline = data.indexOf(0x0a);
    skippedBytes += newline + 1;
    data = newline === -1 ? Buffer.alloc(0) : data.subarray(newline + 1);
  }
  let all = data.toString('utf8').split('\n');
  if (all.at(-1) === '') all.pop();
  all = all.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let firstLine = 0;
  if (read.skipped > 0) {
    const counted = await countLines(ctx, hostFile, skippedBytes);
    firstLine = counted ?? -1;
  }
  if (all.length > MAX_HISTORY_LINES) {
    if (firstLine >= 0) firstLine += all.length - MAX_HISTORY_LINES;
    all = all.slice(all.length - MAX_HISTORY_LINES);
  }
  if (read.skipped > 0 || firstLine > 0) {
    ctx.warn(Warn.tooBig, `${read.stats.size} bytes; only the last ${all.length} lines are read`, hostFile);
  }
  for (const entry of parseHistory(shell, all)) {
    rows.push({ user, path: hostFile, shell, line: firstLine >= 0 ? firstLine + entry.line : null, command: entry.command, time: entry.time });
  }
}

export async function readShellHistory(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (const account of await accountHomes(ctx)) {
    for (const { file, shell } of HISTORY_FILES) {
      if (ctx.signal?.aborted) return rows;
      await readHistoryFile(ctx, `${account.home}/${file}`, shell, account.name, account.uid, rows);
    }
  }
  return rows;
}

export const shellHistory: TableSpec = {
  name: 'shell_history',
  description: `Commands from the history files in every home (~/.bash_history, ~/.zsh_history, ~/.sh_history, ~/.python_history), with their time when the shell records it. At most the last ${MAX_HISTORY_LINES} lines of a file, and no more bytes than the size limit, are read (with a warning).`,
  columns: [
    { name: 'user', type: 'TEXT', description: 'The account whose home holds the file.' },
    { name: 'path', type: 'TEXT', description: 'The history file.' },
    { name: 'shell', type: 'TEXT', description: 'bash, zsh, sh or python.' },
    { name: 'line', type: 'INTEGER', description: 'Line number in the file; NULL when the file was too big to count its lines.', nullable: true },
    { name: 'command', type: 'TEXT', description: 'The command (a zsh command continued over several lines keeps its newlines).' },
    { name: 'time', type: 'INTEGER', description: 'When it was run (Unix seconds): zsh extended history, or bash with HISTTIMEFORMAT set; NULL otherwise.', nullable: true },
  ],
  examples: [
    { description: 'Downloads piped into a shell.', sql: "SELECT user, command, path, line FROM shell_history WHERE command LIKE '%curl%|%sh%' OR command LIKE '%wget%|%sh%'" },
    // `history` and `-c` apart: the query's own command line (hades query "...") would otherwise
    // read as clearing the history, and trip the default pack's shell_history_disabled.
    { description: 'Commands that tried to hide their traces.', sql: "SELECT user, command FROM shell_history WHERE command LIKE '%HISTFILE%' OR command LIKE '%unset HIST%' OR (command LIKE '%history%' AND command LIKE '% -c%')" },
  ],
  generate: (ctx) => readShellHistory(ctx),
};
