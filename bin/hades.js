#!/usr/bin/env node
// The `hades` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (which `npm start` and `npm test` run through the bootstrap).
import { existsSync, readFileSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('hades: HADES_ERR_BOOTSTRAP_STEP_FAILED: hades is not built yet; run `npm run bootstrap` (or `npm start`) in the project folder first\n');
  process.exit(3);
}
try {
  await import(entry.href);
} catch (error) {
  const code = error instanceof Error ? /** @type {NodeJS.ErrnoException} */ (error).code : undefined;
  if (code !== 'EMFILE' && code !== 'ENFILE') throw error;
  // Node loads the program's modules many at a time, each an open file: a low limit of open
  // files (RLIMIT_NOFILE) stops it before any of our code runs. Said here, in this file, as
  // loading anything more may fail the same way (HADES_ERR_FD_LIMIT in src/common/errors.ts).
  process.stderr.write(`hades: HADES_ERR_FD_LIMIT: ${await limitMessage(code)}\n`);
  process.exit(3);
}

/** What the failure says: the system's table (ENFILE) or this process's limit, read once the loader's files are closed. */
async function limitMessage(code) {
  if (code === 'ENFILE') {
    return 'the system has no file descriptors left (ENFILE) to load hades: close programs that hold many, or raise fs.file-max (sysctl)';
  }
  let limit = 'too low';
  for (let attempt = 0; attempt < 5; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      if (line) limit = `${line[1]} (hard limit ${line[2]})`;
      break;
    } catch {
      // Still taken by the loader's files: try again shortly.
    }
  }
  return `too few file descriptors to load hades (EMFILE): this process may open ${limit} files; raise the limit to at least 1024, with \`ulimit -n 65536\` in the shell that starts hades, or LimitNOFILE=65536 in its systemd unit (deploy/hades-agent.service sets it)`;
}
