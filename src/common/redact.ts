/**
 * Secrets that must not travel in events: a person runs `curl -H "Authorization: Bearer ..."`
 * or passes a Hades token on a command line, the exec event carries the command line, and every
 * reader of the event store or of an alert would get the secret. Hades' own tokens
 * (`hadesapi_<id>_<secret>`, `hades1_<id>_<secret>`) keep their id, so an operator can still tell
 * which token was used; bearer credentials lose their value.
 *
 * Works on JSON text as well as plain text: what it replaces never holds a quote or a backslash.
 */
// In JSON text a tab, a newline or another control character is an escape ending in a letter or
// digit (`\t`, `\n`, `\u001b`): `\b` would see no word boundary after it, and `\s` no space, so
// the secret after one would be stored as it is. START is a word boundary in either text (a JSON
// escape before the word counts as one), SPACE whitespace in either.
const START = String.raw`(?:(?<![A-Za-z0-9_])|(?<=\\[bfnrt])|(?<=\\u[0-9A-Fa-f]{4}))`;
const SPACE = String.raw`(?:\s|\\[fnrt]|\\u000[bB])`;
const HADES_TOKEN = new RegExp(String.raw`${START}(hadesapi_[0-9a-f]{16}_|hades1_[0-9a-f]{16}_)[A-Za-z0-9_-]+`, 'g');
// A Hades token after `Bearer` is left to HADES_TOKEN, which keeps its id.
const BEARER = new RegExp(String.raw`(${START}[Bb]earer${SPACE}+)(?!hades(?:api|1)_[0-9a-f]{16}_)[A-Za-z0-9._~+/=-]{8,}`, 'g');
export const REDACTED = '[redacted]';

/** The text with secrets replaced; the same string when it holds none (the common case, cheap). */
export function redactSecrets(text: string): string {
  const hasToken = text.includes('hades1_') || text.includes('hadesapi_');
  const hasBearer = text.includes('earer');
  if (!hasToken && !hasBearer) return text;
  let out = text;
  if (hasToken) out = out.replace(HADES_TOKEN, `$1${REDACTED}`);
  if (hasBearer) out = out.replace(BEARER, `$1${REDACTED}`);
  return out;
}
