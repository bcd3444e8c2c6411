/**
 * The actions the kernel event source produces and the driver hooks each needs: a module of its
 * own, without imports, so that the CLI's help can name them without loading the agent.
 */
/** The driver hooks each event action needs. exec, fork and exit keep the process tree current. */
const HOOKS_OF_ACTION: Readonly<Record<string, readonly string[]>> = {
  exec: ['sched_process_exec'],
  fork: ['sched_process_fork'],
  exit: ['sched_process_exit'],
  connect: ['connect'],
  accept: ['accept'],
  listen: ['listen'],
  dns_query: ['dns'],
  ptrace: ['ptrace'],
  memfd_create: ['memfd_create'],
  module_load: ['module_load'],
  privilege_change: ['priv_change'],
  file_create: ['file_create'],
  file_rename: ['file_rename'],
  file_delete: ['file_delete'],
  file_chmod: ['file_chmod'],
  file_open: ['file_open'],
  // utime, utimes, futimesat and utimensat ride on the file_chmod hook (attribute changes)
  file_times: ['file_chmod'],
  process_rename: ['task_rename'],
  tamper: ['kill', 'file_rename', 'file_delete', 'file_chmod'],
};

/** Every action the kernel event source can produce. */
export const KERNEL_ACTIONS = Object.keys(HOOKS_OF_ACTION);

/** The actions asked for that none of the active hooks can produce (cn_proc has only exec, fork and exit). */
export function unseenActions(actions: ReadonlySet<string> | undefined, active: readonly string[]): string[] {
  const on = new Set(active);
  return [...(actions ?? KERNEL_ACTIONS)].filter((action) => !(HOOKS_OF_ACTION[action] ?? []).some((hook) => on.has(hook)));
}

export function hooksFor(actions: ReadonlySet<string> | undefined): string[] {
  const hooks = new Set(['sched_process_exec', 'sched_process_fork', 'sched_process_exit']);
  for (const action of actions ?? KERNEL_ACTIONS) for (const hook of HOOKS_OF_ACTION[action] ?? []) hooks.add(hook);
  return [...hooks];
}
