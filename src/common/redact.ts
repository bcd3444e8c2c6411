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
 * Works on JSON text as well as plain text: what it replaces never holds a quote or a backslash.
 */
// In JSON text a tab, a newline or another control character is an escape ending in a letter or
// digit (`\t`, `\n`, `\u001b`): `\b` would see no word boundary after it, and `\s` no space, so
// the secret after one would be stored as it is. START is a word boundary in either text (a JSON
// escape before the word counts as one), SPACE whitespace in either.
const START = String.raw`(?:(?<![A-Za-z0-9_])|(?<=\\[bfnrt])|(?<=\\u[0-9A-Fa-f]{4}))`;
const SPACE = String.raw`(?:\s|\\[fnrt]|\\u000[bB])`;
const HADES_TOKEN = new RegExp(String.raw`${START}(hadesapi_[0-9a-f]{16}_|hades1_[0-9a-f]{16}_)[A-Za-z0-9_-]+`, 'g');
/** Between a flag and its value: spaces, `=`, or (in the JSON of an argument list) the end of one element and the start of the next. */
const SEP = String.raw`(?:${SPACE}+|","|=)`;
/** A value: up to a space, a quote or a backslash (so that a JSON escape or the element's end stops it). */
const VALUE = String.raw`[^\s"\\]+`;
// A Hades token after `Bearer` is left to HADES_TOKEN, which keeps its id. The scheme is
// case-insensitive (BEARER, bearer), and `curl --oauth2-bearer TOKEN` gives it as the next argument.
const BEARER = new RegExp(String.raw`(${START}bearer(?:${SPACE}+|","))(?!hades(?:api|1)_[0-9a-f]{16}_)[A-Za-z0-9._~+/=-]{8,}`, 'gi');
/** Any other scheme of an Authorization header (Basic base64 of user:password, Digest, token, ...). */
const AUTHORIZATION = new RegExp(String.raw`(${START}(?:proxy-)?authorization:${SPACE}*(?!bearer)[A-Za-z][A-Za-z0-9_-]*${SPACE}+)(?!hades(?:api|1)_[0-9a-f]{16}_)${VALUE}`, 'gi');
/** Credentials in headers of their own: `X-Api-Key: ...`, `Private-Token: ...`, `X-Auth-Token: ...`. */
const KEY_HEADER = new RegExp(String.raw`(${START}(?:x-)?(?:api-?key|auth-token|access-token|private-token)${SPACE}*:${SPACE}*)(?!hades(?:api|1)_[0-9a-f]{16}_)${VALUE}`, 'gi');
/** The password of a URL's user information: scheme://user:password@host. */
const URL_PASSWORD = new RegExp(String.raw`(://[^/\s:@"\\]+:)[^/\s@"\\]+(?=@)`, 'g');
/** `--password=X`, `--password X`, `--passwd`, `--api-key`, `--secret`, `--token` and the like. */
const PASSWORD_FLAG = new RegExp(String.raw`(${START}--?(?:password|passwd|pass|api-?key|secret|client-secret|token|auth-token|access-token)${SEP})(?!hades(?:api|1)_[0-9a-f]{16}_)${VALUE}`, 'gi');
/** `sshpass -p X`. */
const SSHPASS = new RegExp(String.raw`(${START}sshpass(?:${SPACE}+|",")-p(?:${SPACE}*|","))${VALUE}`, 'g');
/** The MySQL and MariaDB clients' password glued to `-p` (`mysql -u root -pS3cret`). */
const MYSQL_PASSWORD = new RegExp(String.raw`(${START}(?:mysql|mariadb|mysqldump|mysqladmin|mariadb-dump)(?:${SPACE}+|",")(?:[^\s"\\]+(?:${SPACE}+|","))*?-p)[^\s"\\-][^\s"\\]*`, 'g');
/** `curl -u user:password` (`--user`, glued or not): the user stays; a uid:gid of digits (docker -u 0:0) is not a password. */
const USER_PASSWORD = new RegExp(String.raw`(${START}-(?:u|-user)(?:${SPACE}+|","|=)?[^\s:"\\]+:)(?![0-9]+(?:[\s"\\]|$))${VALUE}`, 'g');
export const REDACTED = '[redacted]';

/** Whether a text may hold any of the secrets above: one scan, for the lines that hold none (most). */
const SUSPECT = /hades1_|hadesapi_|bearer|authorization:|:\/\/[^/\s"\\]+@|pass|secret|token|api-?key|-u|mysql|mariadb/i;

/** The text with secrets replaced; the same string when it holds none (the common case, cheap). */
export function redactSecrets(text: string): string {
  if (!SUSPECT.test(text)) return text;
  let out = text;
  if (text.includes('hades1_') || text.includes('hadesapi_')) out = out.replace(HADES_TOKEN, `$1${REDACTED}`);
  out = out.replace(BEARER, `$1${REDACTED}`);
  out = out.replace(AUTHORIZATION, `$1${REDACTED}`);
  out = out.replace(KEY_HEADER, `$1${REDACTED}`);
  if (out.includes('://')) out = out.replace(URL_PASSWORD, `$1${REDACTED}`);
  out = out.replace(PASSWORD_FLAG, `$1${REDACTED}`);
  if (out.includes('sshpass')) out = out.replace(SSHPASS, `$1${REDACTED}`);
  if (/mysql|mariadb/.test(out)) out = out.replace(MYSQL_PASSWORD, `$1${REDACTED}`);
  if (out.includes('-u') || out.includes('--user')) out = out.replace(USER_PASSWORD, `$1${REDACTED}`);
  return out;
}
