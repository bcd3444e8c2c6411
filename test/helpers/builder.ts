import type { HadesEvent } from '../../src/common/events/index.js';
import { Accounts } from '../../src/agent/accounts.js';
import { EventBuilder } from '../../src/agent/builder.js';
import { ExecutableHasher } from '../../src/agent/hasher.js';
import { ProcessTree } from '../../src/agent/tree.js';

/** An event builder over a fresh process tree, with hashing off, for unit tests. */
export function newBuilder(): EventBuilder {
  const builder = new EventBuilder(new ProcessTree('test', 65536), new Accounts(), new ExecutableHasher({ enabled: false, maxFileBytes: 1 << 20, maxBytesPerSecond: 1 << 20 }), {
    host: { name: 'test', kernel: '6.18', architecture: 'x64' },
    agentVersion: 'test',
    ancestors: 8,
  });
  builder.bootTimeNs = 1_795_850_000_000_000_000;
  return builder;
}

/** Events as they leave the agent: JSON, so that absent optional fields are gone. */
export const wire = (event: HadesEvent): Record<string, any> => JSON.parse(JSON.stringify(event)) as Record<string, any>;
