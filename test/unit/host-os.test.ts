/** The operating system an agent tells the server (src/agent/transport/host-os.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { hostOs } from '../../src/agent/transport/host-os.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hades-host-os-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('names the distribution from os-release, the first file that has a name, else the kernel', () => {
  const etc = path.join(dir, 'etc-os-release');
  const lib = path.join(dir, 'lib-os-release');
  writeFileSync(lib, 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  assert.equal(hostOs([etc, lib]), 'Debian GNU/Linux 12 (bookworm)', 'the missing first file skipped');
  writeFileSync(etc, "PRETTY_NAME='Ubuntu 24.04.1 LTS'\nID=ubuntu\n");
  assert.equal(hostOs([etc, lib]), 'Ubuntu 24.04.1 LTS');
  writeFileSync(etc, 'ID=alpine\n');
  assert.equal(hostOs([etc]), `${os.type()} ${os.release()}`, 'no name: the kernel');
  assert.equal(hostOs([path.join(dir, 'none')]), `${os.type()} ${os.release()}`);
});
