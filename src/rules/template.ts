/**
 * Output templates: text with `{field}` placeholders, e.g.
 * `shell {process.executable} spawned by {process.parent.name}`. Fields are checked when the
 * rule loads; a field the event lacks renders as `<na>`, or as the text after a bar
 * (`{process.parent.name|no parent}`); `{{` and `}}` are literal braces.
 * Several values (`{process.args}`, `{ancestor.name}`) are joined by spaces. A placeholder
 * renders at most MAX_VALUE_CHARS characters and the text at most MAX_OUTPUT_CHARS, cut with
 * a note of how much was left out.
 */
import { allValues, type EventRecord } from './accessor.js';
import { resolveField } from './fields.js';
import { compileError, type TextSource } from './problems.js';

export const MISSING = '<na>';
/**
 * Most characters one placeholder renders, and the whole text: an alert's text is a line in
 * lists, chat messages and syslog, not the event (which the alert keeps whole). A command line
 * of megabytes from a plugin or a log line would otherwise go whole into every alert.
 */
export const MAX_VALUE_CHARS = 1024;
export const MAX_OUTPUT_CHARS = 4096;

/** The text cut at `max` characters (never inside a surrogate pair), saying how much was left out. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…[${text.length - end} more]`;
}

/** Extra values a template may name besides event fields (correlation rules: count, key). */
export type TemplateExtras = Readonly<Record<string, string | number>>;

export interface Template {
  readonly text: string;
  render(event: EventRecord, extras?: TemplateExtras): string;
}

type Part = string | ((e: EventRecord, extras: TemplateExtras | undefined) => string);

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Compiles a template; `extraNames` are the placeholders allowed besides fields. */
export function compileTemplate(source: TextSource, extraNames: readonly string[] = []): Template {
  const text = source.text;
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i += 2;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i += 2;
    } else if (c === '}') {
      throw compileError('HADES_ERR_RULE_SYNTAX', "'}' without '{' in the output template (write '}}' for a brace)", source, i);
    } else if (c === '{') {
      const close = text.indexOf('}', i);
      if (close < 0) throw compileError('HADES_ERR_RULE_SYNTAX', "'{' without '}' in the output template (write '{{' for a brace)", source, i);
      // `{field|text}`: the text where the event lacks the field, instead of <na>.
      const inside = text.slice(i + 1, close);
      const bar = inside.indexOf('|');
      const name = (bar < 0 ? inside : inside.slice(0, bar)).trim();
      const missing = bar < 0 ? MISSING : inside.slice(bar + 1);
      if (literal) parts.push(literal);
      literal = '';
      if (extraNames.includes(name)) {
        parts.push((_e, extras) => {
          const v = extras?.[name];
          return v === undefined ? missing : cutText(String(v), MAX_VALUE_CHARS);
        });
      } else {
        const r = resolveField(name);
        if (!r.ok) {
          throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `output template: ${r.message}${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, source, i + 1, r.suggestion);
        }
        const values = allValues(r.ref);
        parts.push((e) => {
          const vs = values(e);
          return vs.length === 0 ? missing : cutText(vs.map(show).join(' '), MAX_VALUE_CHARS);
        });
      }
      i = close + 1;
    } else {
      literal += c;
      i++;
    }
  }
  if (literal) parts.push(literal);
  return {
    text,
    render(event, extras) {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p(event, extras);
      return cutText(out, MAX_OUTPUT_CHARS);
    },
  };
}
