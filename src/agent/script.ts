/**
 * The file a shell or script interpreter was given to run (`sh s.sh`, `python3 -u ./x.py`, or a
 * `#!` script, which the kernel executes as its interpreter with the script's path as an
 * argument), as an absolute path resolved against the process's working directory.
 *
 * Rules that follow a file from its write to its run (a dropper's `cd /tmp; wget ...; sh s.sh`)
 * need the path the file was written at, and the argument alone is only that when it was given
 * absolute. The command line is read as each interpreter reads its own: single-letter options
 * one letter at a time (`-eo pipefail`: `o` takes the rest of the cluster or the next argument),
 * options that take a value skip it, and an option that gives the code itself (`-c`, `-e`, `-m`,
 * `-r`...) or reads it from standard input means there is no script file. Only the program's
 * name is looked at for most execs (one test).
 */
import path from 'node:path';

interface Family {
  /** Letters that give the code on the command line or from standard input: no script file. */
  readonly code: string;
  /** Letters that take a value: the rest of their cluster, else the next argument. */
  readonly valued: string;
  /** Letters whose value may only be attached (`perl -i.bak`, `-0777`): the rest of the cluster. */
  readonly attached?: string;
  /** The letter whose value is the script itself (`php -f FILE`). */
  readonly file?: string;
  /** The letter whose value is a folder the interpreter changes to before reading the script (`ruby -C DIR`). */
  readonly chdir?: string;
  /** Long options that give the code. */
  readonly longCode?: ReadonlySet<string>;
  /** Long options whose value is the next argument (unless given with `=`). */
  readonly longValued?: ReadonlySet<string>;
  /** A subcommand before the script (`bun run x.ts`, `deno run -A x.ts`). */
  readonly subcommand?: string;
  /** Whether `+` begins options as `-` does (`set +o history` as `bash +o history`). */
  readonly plus?: boolean;
}

const SHELL: Family = { code: 'cs', valued: 'oO', plus: true, longValued: new Set(['--rcfile', '--init-file']) };
const NODE: Family = {
  code: 'ep',
  valued: 'rC',
  longCode: new Set(['--eval', '--print']),
  longValued: new Set(['--require', '--import', '--loader', '--experimental-loader', '--conditions', '--input-type', '--title', '--env-file', '--inspect-port', '--max-old-space-size']),
};
const FAMILIES: readonly [RegExp, Family][] = [
  [/^(?:(?:ba|da|z|k|mk|a|ya|r)?sh)$/, SHELL],
  [/^t?csh$/, { code: 'cs', valued: '' }],
  [/^fish$/, { code: 'c', valued: 'Cdl', longCode: new Set(['--command']), longValued: new Set(['--init-command', '--debug', '--features']) }],
  [/^python[0-9.]*$/, { code: 'cm', valued: 'WXQ', longValued: new Set(['--check-hash-based-pycs']) }],
  [/^perl[0-9.]*$/, { code: 'eE', valued: 'IMm', attached: 'il0xCDV' }],
  [/^ruby[0-9.]*$/, { code: 'e', valued: 'IrCEF', attached: 'x0lKTW', chdir: 'C', longValued: new Set(['--encoding', '--external-encoding', '--internal-encoding', '--enable', '--disable']) }],
  // -r, -B, -R, -E: code; -a: interactive; -S: the built-in server; -t its document root.
  [/^php[0-9.]*$/, { code: 'rBREaS', valued: 'cdzt', file: 'f' }],
  [/^(?:node|nodejs)$/, NODE],
  [/^(?:bun|deno)$/, { ...NODE, valued: 'rCc', subcommand: 'run' }],
  // Lua runs `-e` code, then the script if one is given.
  [/^lua(?:jit|[0-9.]*)$/, { code: '', valued: 'el' }],
];
const NAMES = /(?:^|\/)(?:(?:ba|da|z|k|mk|a|ya|r)?sh|t?csh|fish|python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|node|nodejs|bun|deno|lua(?:jit|[0-9.]*))$/;

/**
 * The script `args` give `program` (a path or a name: the executable, or the installed program
 * it is a copy of), absolute; undefined when the program is no interpreter, runs code given on
 * its command line or from standard input, or the script is relative and the working directory
 * unknown.
 */
export function scriptOf(program: string | undefined, args: readonly string[] | undefined, cwd: string | undefined): string | undefined {
  if (program === undefined || args === undefined || args.length < 2 || !NAMES.test(program)) return undefined;
  const name = program.slice(program.lastIndexOf('/') + 1);
  const family = FAMILIES.find(([test]) => test.test(name))?.[1];
  if (family === undefined) return undefined;
  let folder = cwd;
  let subcommand = family.subcommand;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return absolute(args[i + 1], folder);
    if (arg === '-' || arg === '') return undefined;
    if (arg.startsWith('--')) {
      const option = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
      if (family.longCode?.has(option)) return undefined;
      if (!arg.includes('=') && family.longValued?.has(option)) i++;
      continue;
    }
    if (arg.startsWith('-') || (family.plus === true && arg.startsWith('+'))) {
      // One letter at a time: flags go on, a letter with a value ends the cluster.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j] as string;
        if (family.code.includes(letter)) return undefined;
        const valued = family.valued.includes(letter) || letter === family.file;
        if (!valued && !family.attached?.includes(letter)) continue;
        const rest = arg.slice(j + 1);
        // An attached-only value is the rest of the cluster, even when empty (`perl -i`).
        const value = valued && rest === '' ? args[++i] : rest;
        if (letter === family.file) return absolute(value, folder);
        if (letter === family.chdir && value !== undefined) folder = absolute(value, folder);
        break;
      }
      continue;
    }
    if (subcommand !== undefined && arg === subcommand) {
      subcommand = undefined;
      continue;
    }
    return absolute(arg, folder);
  }
  return undefined;
}

function absolute(file: string | undefined, cwd: string | undefined): string | undefined {
  if (file === undefined || file === '' || file === '-') return undefined;
  if (file.startsWith('/')) return path.posix.normalize(file);
  return cwd?.startsWith('/') ? path.posix.resolve(cwd, file) : undefined;
}
