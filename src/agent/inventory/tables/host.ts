/** Tables of the running host: processes, sockets, accounts, kernel, hardware, mounts. */
import type { TableSpec } from '../table.js';

export const hostTables: readonly TableSpec[] = [];
