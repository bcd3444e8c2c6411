/**
 * The honeypot mode's process (docs/plugins.md, "The honeypot"): the agent starts it as its
 * built-in `honeypot` plugin when plugins.honeypot.enabled. At stop, every decoy is closed and
 * each open connection reported.
 */
import { pluginVersion, servePlugin } from '../plugins/plugin-main.js';
import { Honeypot } from './decoys.js';

await servePlugin('honeypot', (io) => new Honeypot(io, pluginVersion(), { dropToNobody: true }));
