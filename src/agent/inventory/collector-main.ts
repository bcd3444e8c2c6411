/**
 * The inventory collector's process (docs/plugins.md). The agent starts it as its built-in
 * `inventory` plugin; `hades query` starts one for a single query.
 */
import { pluginVersion, servePlugin } from '../plugins/plugin-main.js';
import { Collector } from './collector.js';
import { allTables } from './tables/index.js';

await servePlugin('inventory collector', (io) => new Collector(io, allTables, pluginVersion()));
