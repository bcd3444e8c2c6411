/**
 * Names of kernel threads, which a program takes to hide among them, and the agent's default
 * scheduled query that finds the programs that did. The default rule pack names the same in its
 * `kernel_thread_names` and `kernel_thread_prefixes` lists (rules/evasion.yaml), which a unit
 * test holds equal to these.
 */

/** Whole names (comm, as ps shows them in square brackets). */
export const KERNEL_THREAD_NAMES: readonly string[] = [
  'kthreadd',
  'kswapd0',
  'khugepaged',
  'ksmd',
  'kauditd',
  'kdevtmpfs',
  'khungtaskd',
  'oom_reaper',
  'kblockd',
  'kintegrityd',
  'writeback',
  'netns',
  'kcompactd0',
  'watchdogd',
  'kthrotld',
  'ipv6_addrconf',
  'mm_percpu_wq',
  'edac-poller',
];

/** Prefixes of the per-CPU and per-device ones, and `[`: a name in brackets, as ps shows them. */
export const KERNEL_THREAD_PREFIXES: readonly string[] = [
  'kworker/',
  'ksoftirqd/',
  'migration/',
  'rcu_',
  'rcuo',
  'cpuhp/',
  'idle_inject/',
  'watchdog/',
  'irq/',
  'jbd2/',
  'kswapd',
  'kcompactd',
  'scsi_eh_',
  'scsi_tmf_',
  'xfsaild/',
  '[',
];

/** A SQL string literal. */
const sqlString = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/** A GLOB pattern of the values that begin with `prefix` (its `[`, `*` and `?` taken literally). */
const prefixGlob = (prefix: string): string => `${prefix.replace(/[[*?]/g, (c) => `[${c}]`)}*`;

/** The test of one column: a kernel thread's name, or one of their prefixes (GLOB: case-sensitive, `_` literal). */
function kernelThreadLike(column: string): string {
  const names = `${column} IN (${KERNEL_THREAD_NAMES.map(sqlString).join(', ')})`;
  return [names, ...KERNEL_THREAD_PREFIXES.map((p) => `${column} GLOB ${sqlString(prefixGlob(p))}`)].join(' OR ');
}

/**
 * User-space processes (they have an executable; a kernel thread has none) whose name (comm,
 * set at exec or by prctl PR_SET_NAME and /proc/PID/comm) or argv[0] (its first word in the
 * cmdline: `exec -a '[kworker/0:1]' ./miner`) looks like a kernel thread's. One walk of /proc
 * reading stat, cmdline, status and the exe link of each process; nothing is hashed.
 */
export const DISGUISED_PROCESSES_SQL =
  'SELECT pid, name, argv0, path, cmdline, uid, user FROM ' +
  "(SELECT pid, name, path, cmdline, uid, user, substr(cmdline, 1, instr(cmdline || ' ', ' ') - 1) AS argv0 FROM processes WHERE path IS NOT NULL) " +
  `WHERE ${kernelThreadLike('name')} OR ${kernelThreadLike('argv0')}`;
