/**
 * The names of the agent's inventory tables (docs/tables.md), in the order the docs list them.
 * The tables themselves (their columns and the code that reads the host) live in the agent
 * (src/agent/inventory/tables/), which the server may not import: this list is what the server
 * knows of them, to refuse an `inventory` task naming a table no agent has when it is made,
 * rather than on every agent. test/unit/inventory-tables.test.ts keeps it equal to the agent's
 * specs: a table added there must be added here.
 */
export const INVENTORY_TABLES = [
  'processes',
  'process_open_sockets',
  'listening_ports',
  'connections',
  'users',
  'groups',
  'sudoers',
  'logged_in_users',
  'last_logins',
  'kernel_modules',
  'suid_binaries',
  'os_version',
  'system_info',
  'interfaces',
  'mounts',
  'deb_packages',
  'rpm_packages',
  'python_packages',
  'npm_packages',
  'jar_packages',
  'package_findings',
  'crontab',
  'systemd_units',
  'startup_items',
  'ld_so_preload',
  'ssh_configs',
  'authorized_keys',
  'shell_history',
  'containers',
] as const;

export type InventoryTable = (typeof INVENTORY_TABLES)[number];

const known: ReadonlySet<string> = new Set(INVENTORY_TABLES);

export const isInventoryTable = (name: unknown): name is InventoryTable => typeof name === 'string' && known.has(name);
