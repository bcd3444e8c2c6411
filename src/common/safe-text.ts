/**
 * Text shown to a person that holds what hosts and users choose: process names, command lines
 * and file paths chosen by whoever runs a program on a host, alert comments typed by API users.
 * A control character in it would let that person move a terminal's cursor, clear the screen or
 * print a line that looks like another one; bidirectional controls reorder what a terminal or a
 * chat client shows (`evil\u202etxt.exe` reads `evilexe.txt`); characters that show as nothing
 * make two different strings look alike. `escapeUnsafe` writes each such character as an escape
 * (`\n`, `\x1b`, `\u202e`), so that one line of data stays one line and reads as it is. The CLI's
 * output for a terminal (cli/terminal.ts) and the chat messages of the alert outputs use it.
 */

/**
 * C0 and C1 controls, DEL, the characters that change the direction or lines of text, and lone
 * surrogates: the agent keeps a byte that is not UTF-8 as U+DC80..U+DCFF (docs/events.md), which
 * would show as U+FFFD, every such byte alike; it is shown as the byte (`\xff`).
 */
const UNSAFE = String.raw`\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff`;
/**
 * Characters that show as nothing, or as almost nothing: the soft hyphen, the Mongolian vowel
 * separator, the zero-width space, non-joiner and joiner, the word joiner and the invisible
 * operators, and the zero-width no-break space (byte order mark).
 */
const INVISIBLE = String.raw`\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff`;

/** A test for one such character, and a pattern that finds them all (tested first: most text has none). */
const patterns = (chars: string): readonly [RegExp, RegExp] => [new RegExp(`[${chars}]`, 'u'), new RegExp(`[${chars}]`, 'gu')];
const CONTROLS = patterns(UNSAFE);
const CONTROLS_AND_INVISIBLE = patterns(UNSAFE + INVISIBLE);
const CONTROL_RUNS = new RegExp(`[${UNSAFE}]+`, 'gu');
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16)}`;
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

export interface EscapeOptions {
  /** Escape the characters that show as nothing (zero-width space, joiners, ...) too. */
  readonly invisible?: boolean;
}

/** `text` with its control, line, direction (and, if asked, invisible) characters escaped: safe to show as (part of) one line. */
export function escapeUnsafe(text: string, options: EscapeOptions = {}): string {
  const [one, all] = options.invisible ? CONTROLS_AND_INVISIBLE : CONTROLS;
  return one.test(text) ? text.replace(all, escape) : text;
}

/** Whether `text` holds a control, line, direction (or, if asked, invisible) character: not one line a person can read as it is. */
export function hasUnsafe(text: string, options: EscapeOptions = {}): boolean {
  return (options.invisible ? CONTROLS_AND_INVISIBLE : CONTROLS)[0].test(text);
}

/** `text` with each run of control, line and direction characters made one space: a value kept for what it says (a multi-line note), on one line. */
export function blankUnsafe(text: string): string {
  return CONTROLS[0].test(text) ? text.replace(CONTROL_RUNS, ' ') : text;
}
