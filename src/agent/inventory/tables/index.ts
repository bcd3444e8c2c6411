/** Every inventory table, in the order docs/tables.md lists them. */
import type { TableSpec } from '../table.js';
import { hostTables } from './host.js';
import { softwareTables } from './software.js';

export const allTables: readonly TableSpec[] = [...hostTables, ...softwareTables];
