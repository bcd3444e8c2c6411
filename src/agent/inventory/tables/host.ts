/** Tables of the running host: processes, sockets, accounts, kernel, hardware, mounts. */
import type { TableSpec } from '../table.js';
import { groupsTable, lastLoginsTable, loggedInUsersTable, sudoersTable, usersTable } from './accounts.js';
import { connectionsTable, interfacesTable, listeningPortsTable, processOpenSocketsTable } from './net.js';
import { processesTable } from './processes.js';
import { kernelModulesTable, mountsTable, osVersionTable, suidBinariesTable, systemInfoTable } from './system.js';

export const hostTables: readonly TableSpec[] = [
  processesTable,
  processOpenSocketsTable,
  listeningPortsTable,
  connectionsTable,
  usersTable,
  groupsTable,
  sudoersTable,
  loggedInUsersTable,
  lastLoginsTable,
  kernelModulesTable,
  suidBinariesTable,
  osVersionTable,
  systemInfoTable,
  interfacesTable,
  mountsTable,
];
