/**
 * The script a shell or interpreter was given (hades.process.script), read from its command line
 * as the interpreter reads it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scriptOf } from '../../src/agent/script.js';

describe('scriptOf', () => {
  const cases: [string, string[], string | undefined, string | undefined][] = [
    // program, args, working directory, script
    ['/usr/bin/dash', ['sh', 's.sh'], '/tmp', '/tmp/s.sh'],
    ['/usr/bin/dash', ['/bin/sh', './s.sh', 'arg'], '/tmp/x', '/tmp/x/s.sh'],
    ['/usr/bin/bash', ['bash', '-x', '-o', 'pipefail', '../y/s.sh'], '/tmp/x', '/tmp/y/s.sh'],
    ['/usr/bin/bash', ['bash', '+o', 'history', '--', '-odd name'], '/dev/shm', '/dev/shm/-odd name'],
    ['/usr/bin/bash', ['bash', '/tmp/./a//b.sh'], undefined, '/tmp/a/b.sh'],
    ['/usr/bin/python3.11', ['python3', '-u', '-W', 'ignore', 'x.py'], '/var/tmp', '/var/tmp/x.py'],
    ['/usr/bin/perl', ['perl', '-w', 'p.pl'], '/tmp', '/tmp/p.pl'],
    ['/usr/bin/ruby3.1', ['ruby', '-r', 'socket', 'r.rb'], '/tmp', '/tmp/r.rb'],
    ['/usr/bin/php8.2', ['php', '-d', 'x=1', '-f', 'p.php'], '/tmp', '/tmp/p.php'],
    ['/usr/bin/node', ['node', '--require', './hook.js', 'n.js'], '/tmp', '/tmp/n.js'],
    ['/usr/bin/lua5.4', ['lua', '-l', 'socket', 'l.lua'], '/tmp', '/tmp/l.lua'],
    // Clusters read a letter at a time: a letter with a value takes the rest, or the next argument.
    ['/usr/bin/bash', ['bash', '-eo', 'pipefail', '/tmp/s.sh'], '/srv', '/tmp/s.sh'],
    ['/usr/bin/python3.11', ['python3', '-Ximporttime', 'x.py'], '/tmp', '/tmp/x.py'],
    ['/usr/bin/perl', ['perl', '-Mre', '-i.bak', 'x.pl'], '/tmp', '/tmp/x.pl'],
    ['/usr/bin/ruby3.1', ['ruby', '-rsocket', 'x.rb'], '/tmp', '/tmp/x.rb'],
    ['/usr/bin/php8.2', ['php', '-ffoo.php'], '/tmp', '/tmp/foo.php'],
    ['/usr/bin/node', ['node', '--title', 't', 'x.js'], '/tmp', '/tmp/x.js'],
    ['/usr/bin/fish', ['fish', '-C', 'cmd', 's.fish'], '/tmp', '/tmp/s.fish'],
    // A subcommand before the script; a folder changed to before reading it.
    ['/usr/local/bin/bun', ['bun', 'run', 'x.ts'], '/tmp', '/tmp/x.ts'],
    ['/usr/bin/deno', ['deno', 'run', '-A', 'x.ts'], '/tmp', '/tmp/x.ts'],
    ['/usr/bin/ruby3.1', ['ruby', '-C', '/var/tmp', 'x.rb'], '/root', '/var/tmp/x.rb'],
    // Lua runs -e code, then its script.
    ['/usr/bin/lua5.4', ['lua', '-e', 'x=1', 'l.lua'], '/tmp', '/tmp/l.lua'],
    // Code on the command line or on standard input: no script.
    ['/usr/bin/php8.2', ['php', '-B', 'code', '-R', 'code'], '/tmp', undefined],
    ['/usr/bin/php8.2', ['php', '-S', '0:80'], '/tmp', undefined],
    ['/usr/bin/bash', ['bash', '-c', 'id', 'x.sh'], '/tmp', undefined],
    ['/usr/bin/bash', ['bash', '-xc', 'id'], '/tmp', undefined],
    ['/usr/bin/bash', ['bash', '-s', 'arg'], '/tmp', undefined],
    ['/usr/bin/dash', ['sh', '-'], '/tmp', undefined],
    ['/usr/bin/python3.11', ['python3', '-m', 'http.server'], '/tmp', undefined],
    ['/usr/bin/python3.11', ['python3', '-Bc', 'print(1)'], '/tmp', undefined],
    ['/usr/bin/perl', ['perl', '-e', 'print 1'], '/tmp', undefined],
    ['/usr/bin/php8.2', ['php', '-r', 'echo 1;'], '/tmp', undefined],
    ['/usr/bin/node', ['node', '-pe', '1'], '/tmp', undefined],
    ['/usr/bin/node', ['node', '--eval=1'], '/tmp', undefined],
    // Not an interpreter, no argument, or relative with no working directory.
    ['/usr/bin/cat', ['cat', 's.sh'], '/tmp', undefined],
    ['/usr/bin/shred', ['shred', 'x'], '/tmp', undefined],
    ['/usr/bin/bash', ['bash'], '/tmp', undefined],
    ['/usr/bin/bash', ['bash', '-i'], '/tmp', undefined],
    ['/usr/bin/dash', ['sh', 's.sh'], undefined, undefined],
    [undefined as unknown as string, ['sh', 's.sh'], '/tmp', undefined],
    // A copy's installed name (hades.process.copy_of.name) is what is read.
    ['bash', ['kworker', 'k.sh'], '/tmp', '/tmp/k.sh'],
  ];
  for (const [program, args, cwd, script] of cases) {
    it(`${String(program)} ${JSON.stringify(args)} in ${String(cwd)}: ${String(script)}`, () => {
      assert.equal(scriptOf(program, args, cwd), script);
    });
  }
});
