/**
 * Text for a terminal. Much of what the CLI prints comes from hosts and people it does not
 * trust: process names, command lines and file paths chosen by whoever runs a program on a
 * host, alert comments and assignees typed by API users, plugin counters. A control character
 * in them would let that person move the cursor, clear the analyst's screen or print a line
 * that looks like another alert; bidirectional controls reorder what is shown, and characters
 * that show as nothing (a zero-width space) make two names look alike. `shown` writes
 * each such character as an escape (`\n`, `\x1b`, `\u202e`), so one line of data stays one
 * line of output and reads as it is (the characters and their escapes: common/safe-text.ts,
 * which the alert outputs' chat messages use too). JSON text shown to a person goes through it
 * too: JSON escapes C0 controls but leaves C1 and direction characters as they are. `--json`
 * output is for programs, which parse it.
 */
import { escapeUnsafe } from '../common/safe-text.js';

/** The value as text, its control characters escaped: safe to print as (part of) one line. */
export function shown(value: unknown): string {
  // Characters that show as nothing too: two names that look alike must not read alike here.
  return escapeUnsafe(typeof value === 'string' ? value : String(value), { invisible: true });
}
