/**
 * The log collector's process (docs/plugins.md): the agent starts it as its built-in `logs`
 * plugin. At stop, journalctl is stopped and where each source stopped is kept.
 */
import { pluginVersion, servePlugin } from '../plugins/plugin-main.js';
import { LogCollector } from './collector.js';

await servePlugin('log collector', (io) => new LogCollector(io, pluginVersion()));
