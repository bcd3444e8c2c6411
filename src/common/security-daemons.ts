/**
 * The audit and security monitoring daemons Hades watches over: the agent asks the driver to
 * report the signals sent to them (kernel-events.ts), and the default rule pack names the same
 * programs in its `security_daemons` and `security_daemon_executables` lists (rules/evasion.yaml),
 * which a unit test holds equal to these.
 */

/**
 * By comm, the kernel's name of a process (its program's file name, cut at 15 characters): the
 * audit daemon and its forwarder, osquery, Falco, Tetragon, Auditbeat, the Wazuh and OSSEC
 * agents, Sysmon for Linux.
 */
export const SECURITY_DAEMON_NAMES: readonly string[] = [
  'auditd',
  'audisp-remote',
  'osqueryd',
  'falco',
  'tetragon',
  'auditbeat',
  'wazuh-agentd',
  'wazuh-syscheckd',
  'wazuh-logcollec',
  'wazuh-modulesd',
  'wazuh-execd',
  'ossec-agentd',
  'ossec-syscheckd',
  'ossec-logcollec',
  'sysmon',
];

/** By installed path, whatever the process calls itself. */
export const SECURITY_DAEMON_EXECUTABLES: readonly string[] = ['/usr/sbin/auditd', '/sbin/auditd'];
