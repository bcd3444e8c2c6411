/**
 * The file a shell or script interpreter was given to run (`sh s.sh`, `python3 -u ./x.py`, or a
 * `#!` script, which the kernel executes as its interpreter with the script's path as an
 * argument), as an absolute path resolved against the process's working directory.
 *
 * Rules that follow a file from its write to its run (a dropper's `cd /tmp; wget ...; sh s.sh`)
 * need the path the file was written at, and the argument alone is only that when it was given
 * absolute. The command line is read as each interpreter reads its own: options that take a
 * value skip it, and an option that gives the code itself (`-c`, `-e`, `-m`, `-r`...) means
 * there is no script file. Only the program's name is looked at for most execs (one test).
 */
import path from 'node:path';

interface Family {
  /** Whether an option (one argument beginning with '-') gives the code: no script file then. */
  code(option: string): boolean;
  /** Options whose value is the next argument. */
  values: ReadonlySet<string>;
  /** An option whose value is the script itself (php -f FILE). */
  file?: string;
}

/** A cluster of single-letter options containing one of the letters (`-xc`, `-Bc`). */
function cluster(letters: string): (option: string) => boolean {
  const test = new RegExp(`^-[A-Za-z]*[${letters}][A-Za-z]*$`);
  return (option) => test.test(option);
}

const SHELL: Family = { code: cluster('cs'), values: new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']) };
const FAMILIES: readonly [RegExp, Family][] = [
  [/^(?:(?:ba|da|z|k|mk|a|tc|c|ya|r)?sh|fish)$/, SHELL],
  [/^python[0-9.]*$/, { code: cluster('cm'), values: new Set(['-W', '-X', '--check-hash-based-pycs']) }],
  [/^perl[0-9.]*$/, { code: cluster('eE'), values: new Set(['-I', '-M', '-m']) }],
  [/^ruby[0-9.]*$/, { code: cluster('e'), values: new Set(['-I', '-r', '-C', '-E', '--encoding']) }],
  [/^php[0-9.]*$/, { code: (o) => o === '-r' || o === '-a', values: new Set(['-c', '-d', '-z']), file: '-f' }],
  [/^(?:node|nodejs|bun|deno)$/, { code: (o) => /^-[A-Za-z]*[ep]$|^--(eval|print)(=|$)/.test(o), values: new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--input-type']) }],
  [/^lua(?:jit|[0-9.]*)$/, { code: (o) => o === '-e' || o === '-i', values: new Set(['-l']) }],
];
const NAMES = /(?:^|\/)(?:(?:ba|da|z|k|mk|a|tc|c|ya|r)?sh|fish|python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|node|nodejs|bun|deno|lua(?:jit|[0-9.]*))$/;

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
  for (let i = 1; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return absolute(args[i + 1], cwd);
    if (arg === family.file) return absolute(args[i + 1], cwd);
    if (arg === '-' || arg === '') return undefined;
    if (arg.startsWith('-') || (family === SHELL && arg.startsWith('+'))) {
      if (family.code(arg)) return undefined;
      if (family.values.has(arg)) i++;
      continue;
    }
    return absolute(arg, cwd);
  }
  return undefined;
}

function absolute(file: string | undefined, cwd: string | undefined): string | undefined {
  if (file === undefined || file === '' || file === '-') return undefined;
  if (file.startsWith('/')) return path.posix.normalize(file);
  return cwd?.startsWith('/') ? path.posix.resolve(cwd, file) : undefined;
}
