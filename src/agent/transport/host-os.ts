/**
 * The host's operating system as the server shows it (`agents list`): the distribution and its
 * version from os-release (`Debian GNU/Linux 12 (bookworm)`), the kernel being a field of its own;
 * the kernel's name and release where no os-release can be read.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseOsRelease } from '../inventory/tables/system.js';

/** At most this many characters of PRETTY_NAME (the server keeps short text). */
const MAX_NAME = 200;

export function hostOs(files: readonly string[] = ['/etc/os-release', '/usr/lib/os-release']): string {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const name = parseOsRelease(text).values.get('PRETTY_NAME')?.trim();
    if (name) return name.slice(0, MAX_NAME);
  }
  return `${os.type()} ${os.release()}`;
}
