/**
 * Text for a terminal. Much of what the CLI prints comes from hosts and people it does not
 * trust: process names, command lines and file paths chosen by whoever runs a program on a
 * host, alert comments and assignees typed by API users, plugin counters. A control character
 * in them would let that person move the cursor, clear the analyst's screen or print a line
 * that looks like another alert; bidirectional controls reorder what is shown. `shown` writes
 * each such character as an escape (`\n`, `\x1b`, `\u202e`), so one line of data stays one
 * line of output and reads as it is. JSON text shown to a person goes through it too: JSON
 * escapes C0 controls but leaves C1 and direction characters as they are. `--json` output is
 * for programs, which parse it.
 */

/**
 * C0 and C1 controls, DEL, the characters that change the direction or lines of text, and lone
 * surrogates: the agent keeps a byte that is not UTF-8 as U+DC80..U+DCFF (docs/events.md), which
 * a terminal would show as U+FFFD, every such byte alike; it is shown as the byte (`\xff`).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16)}`;
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** The value as text, its control characters escaped: safe to print as (part of) one line. */
export function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escape) : text;
}
