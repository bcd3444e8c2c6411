/**
 * Secrets that must not travel in events: a person runs `curl -H "Authorization: Bearer ..."`
 * or passes a Hades token on a command line, the exec event carries the command line, and every
 * reader of the event store or of an alert would get the secret. Hades' own tokens
 * (`hadesapi_<id>_<secret>`, `hades1_<id>_<secret>`) keep their id, so an operator can still tell
 * which token was used; other credentials lose their value: Authorization headers of any scheme,
 * key and token headers, a URL's password, `--password`/`--token`/`--api-key`-style flags,
 * `curl -u user:password`, `sshpass -p`, the MySQL clients' `-pPASSWORD`. Flags are found in a
 * command line and in the JSON of an argument list alike (a value in the next element). This is
 * a best effort on the common forms, not a guarantee: a secret in a form it does not know (an
 * environment variable, a program's own flag) is stored as it was given.
 *
 * Works on JSON text as well as plain text: what it replaces never holds a quote or a backslash,
 * and is never a member's name, so the JSON keeps its shape (only string values change).
 */
// In JSON text a tab, a newline or another control character is an escape ending in a letter or
// digit (`\t`, `\n`, `\u001b`): `\b` would see no word boundary after it, and `\s` no space, so
// the secret after one would be stored as it is. SPACE is whitespace in either text; a word
// starts (startsWord) after anything but a letter, a digit or `_`, or after such an escape.
//
// Every pattern begins with a literal (a keyword, `-`, `://`), so that the regular expression
// engine skips to its candidates instead of trying each position of a 2-4 KB line: the word
// boundary before it is checked in code, for the few matches there are.
const SPACE = String.raw`(?:\s|\\[fnrt]|\\u000[bB])`;
/** Between a flag and its value: spaces, `=`, or (in the JSON of an argument list) the end of one element and the start of the next. */
const SEP = String.raw`(?:${SPACE}+|","|=)`;
/** A value: up to a space, a quote or a backslash (so that a JSON escape or the element's end stops it). */
const VALUE = String.raw`[^\s"\\]+`;
/**
 * Not a JSON key: after `","`, the next string may be the next member's name (a command line
 * that ends in `--token`, followed by `"cwd":`), which must never be replaced; an element of an
 * argument list is never followed by a colon.
 */
const NOT_KEY = String.raw`(?![^\s"\\]*"\s*:)`;
/** Not a Hades token, which HADES_TOKEN redacts keeping its id. */
const NOT_HADES = String.raw`(?!hades(?:api|1)_[0-9a-f]{16}_)`;
const HADES_TOKEN = /(hadesapi_[0-9a-f]{16}_|hades1_[0-9a-f]{16}_)[A-Za-z0-9_-]+/g;
// The scheme is case-insensitive (BEARER, bearer), and `curl --oauth2-bearer TOKEN` gives it as the next argument.
const BEARER = new RegExp(String.raw`(bearer(?:${SPACE}+|","))${NOT_KEY}${NOT_HADES}[A-Za-z0-9._~+/=-]{8,}`, 'gi');
/** Any other scheme of an Authorization header (Basic base64 of user:password, Digest, token, ...). */
const AUTHORIZATION = new RegExp(String.raw`((?:proxy-)?authorization:${SPACE}*(?!bearer)[A-Za-z][A-Za-z0-9_-]*${SPACE}+)${NOT_HADES}${VALUE}`, 'gi');
/** Credentials in headers of their own: `X-Api-Key: ...`, `Private-Token: ...`, `X-Auth-Token: ...`. */
const KEY_HEADER = new RegExp(String.raw`((?:x-)?(?:api-?key|auth-token|access-token|private-token)${SPACE}*:${SPACE}*)${NOT_HADES}${VALUE}`, 'gi');
/** The password of a URL's user information: scheme://user:password@host. */
const URL_PASSWORD = /(:\/\/[^/\s:@"\\]+:)[^/\s@"\\]+(?=@)/g;
/** `--password=X`, `--password X`, `--passwd`, `--api-key`, `--secret`, `--token` and the like. */
const PASSWORD_FLAG = new RegExp(String.raw`(--?(?:password|passwd|pass|api-?key|secret|client-secret|token|auth-token|access-token)${SEP})${NOT_KEY}${NOT_HADES}${VALUE}`, 'gi');
/** `sshpass -p X`. */
const SSHPASS = new RegExp(String.raw`(sshpass(?:${SPACE}+|",")-p(?:${SPACE}*|","))${NOT_KEY}${VALUE}`, 'g');
/**
 * The MySQL and MariaDB clients' password glued to `-p` (`mysql -u root -pS3cret`), within the
 * first MYSQL_ARGS arguments after the client's name: unbounded, each name would be followed to
 * the end of the line, and a command line of `mysql mysql mysql ...` (any user can run one) took
 * the ingest thread seconds per event, an hour for an event of 4 MiB.
 */
const MYSQL_ARGS = 64;
const MYSQL_PASSWORD = new RegExp(String.raw`((?:mysql|mariadb|mysqldump|mysqladmin|mariadb-dump)(?:${SPACE}+|",")(?:[^\s"\\]+(?:${SPACE}+|",")){0,${MYSQL_ARGS}}?-p)[^\s"\\-][^\s"\\]*`, 'g');
/** `curl -u user:password` (`--user`, glued or not): the user stays; a uid:gid of digits (docker -u 0:0) is not a password. */
const USER_PASSWORD = new RegExp(String.raw`(-(?:u|-user)(?:${SPACE}+|","|=)?[^\s:"\\]+:)(?![0-9]+(?:[\s"\\]|$))${VALUE}`, 'g');
export const REDACTED = '[redacted]';

function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

/** Whether a word starts at `at` in `text`: after a character that is not a letter, a digit or `_`, or after a JSON escape (`\n`, `\t`, `\u001b`). */
function startsWord(text: string, at: number): boolean {
  if (at === 0 || !isWordChar(text.charCodeAt(at - 1))) return true;
  const c = text[at - 1];
  if (at >= 2 && text[at - 2] === '\\' && (c === 'b' || c === 'f' || c === 'n' || c === 'r' || c === 't')) return true;
  return at >= 6 && text[at - 6] === '\\' && text[at - 5] === 'u' && /^[0-9A-Fa-f]{4}$/.test(text.slice(at - 4, at));
}

/** Replaces what follows the first group of each match that starts a word. */
function redactAfter(text: string, pattern: RegExp): string {
  return text.replace(pattern, (match: string, kept: string, ...rest: unknown[]) => {
    const offset = rest[rest.length - 2] as number;
    return startsWord(text, offset) ? `${kept}${REDACTED}` : match;
  });
}

// Gates, a scan of the line each (a literal or a short alternation: the engine skips along a 2-4 KB
// line at a fraction of a ns a character, where one alternation of every keyword takes ten times
// as long), so that a line without the words a pattern needs costs a few scans, and the patterns
// run on the few lines that have them.
const HAS_HADES_TOKEN = /hades(?:api|1)_/;
const HAS_AUTH_HEADER = /bearer|authorization/i;
// Not a path's `pass` (/etc/passwd, /usr/bin/passwd): the flags and headers follow a `-`, a word or a space.
const HAS_SECRET_WORD = /(?<!\/)pass|secret|key|token/i;
const HAS_URL_USER = /:\/\/[^/\s"\\@]*@/;
const HAS_MYSQL = /mysql|mariadb/;
/** `-u` glued to a user and its colon, `-u` then a space or the next argument, or `--user` (not `--uid`, `-unsafe`). */
const HAS_USER_PASSWORD = /-u[^\s"\\:]*:|-u(?:\s|",")|--user/;

/** Any of the gates' words (case aside): one scan that most lines (none of these words) end at. */
const HAS_ANY = new RegExp([HAS_SECRET_WORD, HAS_AUTH_HEADER, HAS_HADES_TOKEN, HAS_MYSQL, HAS_URL_USER, HAS_USER_PASSWORD].map((gate) => gate.source).join('|'), 'i');

/** The text with secrets replaced; the same string when it holds none (the common case, cheap). */
export function redactSecrets(text: string): string {
  if (!HAS_ANY.test(text)) return text;
  let out = text;
  if (HAS_HADES_TOKEN.test(out)) out = redactAfter(out, HADES_TOKEN);
  if (HAS_AUTH_HEADER.test(out)) {
    out = redactAfter(out, BEARER);
    out = redactAfter(out, AUTHORIZATION);
  }
  if (HAS_SECRET_WORD.test(out)) {
    out = redactAfter(out, KEY_HEADER);
    out = redactAfter(out, PASSWORD_FLAG);
    if (out.includes('sshpass')) out = redactAfter(out, SSHPASS);
  }
  if (HAS_URL_USER.test(out)) out = out.replace(URL_PASSWORD, `$1${REDACTED}`);
  if (HAS_MYSQL.test(out)) out = redactAfter(out, MYSQL_PASSWORD);
  if (HAS_USER_PASSWORD.test(out)) out = redactAfter(out, USER_PASSWORD);
  return out;
}
