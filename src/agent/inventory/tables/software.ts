/** Tables of what is installed and configured: packages, scheduled and startup items, ssh, history, containers. */
import type { TableSpec } from '../table.js';

export const softwareTables: readonly TableSpec[] = [];
