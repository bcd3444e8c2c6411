/** containers: Docker containers (from dockerd's state folder) and containerd tasks. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { isFolder, listFolder, readText, statPath, Warn } from './software-files.js';

const DOCKER_CONTAINERS = '/var/lib/docker/containers';
/** containerd's runtime folders: one folder per namespace, one per task in it (v2 shims, and the old v1 runtime). */
const CONTAINERD_TASKS = ['/run/containerd/io.containerd.runtime.v2.task', '/run/containerd/io.containerd.runtime.v1.linux'];
/** Docker's own containerd namespace: its tasks are the Docker containers already listed. */
const DOCKER_NAMESPACE = 'moby';
/** Docker writes this time (0001-01-01T00:00:00Z) for something that never happened. */
const ZERO_TIME = '0001-01-01';

type Json = Record<string, unknown>;

const obj = (value: unknown): Json => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {});
const str = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
const int = (value: unknown): number | null => (typeof value === 'number' && Number.isInteger(value) ? value : null);
/** An RFC 3339 time (Docker writes nanoseconds) as Unix seconds; null for Docker's zero time or garbage. */
function unixSeconds(value: unknown): number | null {
  const text = str(value);
  if (text === null || text.startsWith(ZERO_TIME)) return null;
  const ms = Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

async function readJson(ctx: CollectContext, hostFile: string): Promise<Json | undefined> {
  const text = await readText(ctx, hostFile);
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
  } catch {
    // reported below
  }
  ctx.warn(Warn.malformed, 'not a JSON object; skipped', hostFile);
  return undefined;
}

function dockerStatus(state: Json): string {
  if (state['Running'] === true) return state['Paused'] === true ? 'paused' : state['Restarting'] === true ? 'restarting' : 'running';
  if (state['Dead'] === true) return 'dead';
  const started = str(state['StartedAt']);
  return started === null || started.startsWith(ZERO_TIME) ? 'created' : 'exited';
}

async function readDocker(ctx: CollectContext, rows: Row[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const entry of (await listFolder(ctx, DOCKER_CONTAINERS)) ?? []) {
    if (!entry.isDirectory()) continue;
    const folder = `${DOCKER_CONTAINERS}/${entry.name}`;
    const configFile = `${folder}/config.v2.json`;
    if (!(await statPath(ctx, configFile, 'container skipped'))) continue;
    const config = await readJson(ctx, configFile);
    if (!config) continue;
    const id = str(config['ID']) ?? entry.name;
    ids.add(id);
    const state = obj(config['State']);
    const running = state['Running'] === true;
    const inner = obj(config['Config']);
    const command = [str(config['Path']), ...strings(config['Args'])].filter((p): p is string => p !== null);
    const hostConfigFile = `${folder}/hostconfig.json`;
    const hostConfig = (await statPath(ctx, hostConfigFile)) ? await readJson(ctx, hostConfigFile) : undefined;
    rows.push({
      runtime: 'docker',
      namespace: null,
      id,
      name: str(config['Name'])?.replace(/^\//, '') ?? null,
      image: str(inner['Image']),
      image_id: str(config['Image']),
      status: dockerStatus(state),
      running: running ? 1 : 0,
      pid: running ? int(state['Pid']) : null,
      created: unixSeconds(config['Created']),
      started_at: unixSeconds(state['StartedAt']),
      command: command.length > 0 ? command.join(' ') : null,
      privileged: hostConfig && typeof hostConfig['Privileged'] === 'boolean' ? (hostConfig['Privileged'] ? 1 : 0) : null,
      path: configFile,
    });
  }
  return ids;
}

async function pidAlive(ctx: CollectContext, pid: number): Promise<boolean> {
  try {
    return (await stat(path.join(ctx.proc, String(pid)))).isDirectory();
  } catch {
    return false;
  }
}

async function readContainerd(ctx: CollectContext, dockerIds: ReadonlySet<string>, rows: Row[]): Promise<void> {
  for (const base of CONTAINERD_TASKS) {
    for (const ns of (await listFolder(ctx, base)) ?? []) {
      if (!ns.isDirectory()) continue;
      for (const task of (await listFolder(ctx, `${base}/${ns.name}`)) ?? []) {
        const folder = `${base}/${ns.name}/${task.name}`;
        if (!task.isDirectory() && !(task.isSymbolicLink() && (await isFolder(ctx, folder)))) continue;
        if (ns.name === DOCKER_NAMESPACE && dockerIds.has(task.name)) continue;
        const configFile = `${folder}/config.json`;
        const configStats = await statPath(ctx, configFile, 'container skipped');
        const config = configStats ? await readJson(ctx, configFile) : undefined;
        const pidText = (await statPath(ctx, `${folder}/init.pid`)) ? await readText(ctx, `${folder}/init.pid`) : undefined;
        const pid = pidText !== undefined && /^\s*\d+\s*$/.test(pidText) ? Number(pidText) : null;
        const running = pid !== null && (await pidAlive(ctx, pid));
        const annotations = obj(config?.['annotations']);
        const args = strings(obj(config?.['process'])['args']);
        rows.push({
          runtime: 'containerd',
          namespace: ns.name,
          id: task.name,
          name: str(annotations['io.kubernetes.cri.container-name']),
          image: str(annotations['io.kubernetes.cri.image-name']),
          image_id: null,
          status: running ? 'running' : 'stopped',
          running: running ? 1 : 0,
          pid: running ? pid : null,
          created: configStats ? Math.floor(configStats.mtimeMs / 1000) : null,
          started_at: null,
          command: args.length > 0 ? args.join(' ') : null,
          privileged: null,
          path: configStats ? configFile : folder,
        });
      }
    }
  }
}

export async function readContainers(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const dockerIds = await readDocker(ctx, rows);
  await readContainerd(ctx, dockerIds, rows);
  return rows;
}

export const containers: TableSpec = {
  name: 'containers',
  description:
    'Containers of Docker (/var/lib/docker/containers/*/config.v2.json and hostconfig.json) and tasks of containerd (/run/containerd/io.containerd.runtime.*/NAMESPACE/ID: config.json, init.pid), read from their state files without asking the daemons. containerd\'s moby namespace is left out where it repeats a Docker container.',
  columns: [
    { name: 'runtime', type: 'TEXT', description: 'docker or containerd.' },
    { name: 'namespace', type: 'TEXT', description: 'containerd namespace (k8s.io for Kubernetes, moby for Docker); NULL for Docker.', nullable: true },
    { name: 'id', type: 'TEXT', description: 'Container id.' },
    { name: 'name', type: 'TEXT', description: 'Container name (Kubernetes container name for containerd, when annotated).', nullable: true },
    { name: 'image', type: 'TEXT', description: 'Image as asked for, e.g. nginx:1.27.', nullable: true },
    { name: 'image_id', type: 'TEXT', description: 'Image id (sha256:...), Docker only.', nullable: true },
    { name: 'status', type: 'TEXT', description: 'Docker: created, running, paused, restarting, exited or dead; containerd: running or stopped.' },
    { name: 'running', type: 'INTEGER', description: '1 when running (containerd: its init process is alive).' },
    { name: 'pid', type: 'INTEGER', description: 'Process id of the container\'s first process, when running.', nullable: true },
    { name: 'created', type: 'INTEGER', description: 'When it was created (Unix seconds; containerd: when its bundle was written).', nullable: true },
    { name: 'started_at', type: 'INTEGER', description: 'When it last started (Unix seconds; Docker only).', nullable: true },
    { name: 'command', type: 'TEXT', description: 'The command it runs, arguments separated by spaces.', nullable: true },
    { name: 'privileged', type: 'INTEGER', description: '1 for a privileged Docker container; NULL when unknown (containerd).', nullable: true },
    { name: 'path', type: 'TEXT', description: 'The state file read.' },
  ],
  examples: [
    { description: 'Running containers and their main process.', sql: 'SELECT runtime, name, image, pid FROM containers WHERE running = 1' },
    { description: 'Privileged containers.', sql: 'SELECT name, image, command FROM containers WHERE privileged = 1' },
  ],
  generate: (ctx) => readContainers(ctx),
};
