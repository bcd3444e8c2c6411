/** Tables of what is installed and configured: packages, scheduled and startup items, ssh, history, containers. */
import type { TableSpec } from '../table.js';
import { containers } from './containers.js';
import { crontab } from './cron.js';
import { packageFindings } from './findings.js';
import { shellHistory } from './history.js';
import { debPackages } from './packages-deb.js';
import { jarPackages } from './packages-jar.js';
import { npmPackages } from './packages-npm.js';
import { pythonPackages } from './packages-python.js';
import { rpmPackages } from './packages-rpm.js';
import { ldSoPreload } from './preload.js';
import { authorizedKeys, sshConfigs } from './ssh.js';
import { startupItems } from './startup.js';
import { systemdUnits } from './systemd.js';

export const softwareTables: readonly TableSpec[] = [
  debPackages,
  rpmPackages,
  pythonPackages,
  npmPackages,
  jarPackages,
  packageFindings,
  crontab,
  systemdUnits,
  startupItems,
  ldSoPreload,
  sshConfigs,
  authorizedKeys,
  shellHistory,
  containers,
];
