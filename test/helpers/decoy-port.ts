/**
 * A port a honeypot decoy may take in a test, TCP or UDP: outside the ephemeral range, nothing
 * listening on it or bound to it, and free to bind now (found by trying from `from` up).
 */
import net from 'node:net';
import { portRefusal, readPortUse } from '../../src/agent/honeypot/decoys.js';

export async function decoyPort(from: number): Promise<number> {
  const use = readPortUse();
  for (let port = from; port < from + 2000; port++) {
    if (portRefusal(port, use, 'tcp') || portRefusal(port, use, 'udp')) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '::', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port from ${from} below the ephemeral range`);
}
