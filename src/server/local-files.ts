/**
 * Where a deployment keeps the files the `hades` command on its host reads (the admin token and
 * the CA), in a module of its own: the commands that talk to the API load this, not the server.
 */
import { readOwnFile } from '../runtime/regular-file.js';
import path from 'node:path';
import { HadesError } from '../common/errors.js';

export const adminTokenFile = (dataDir: string) => path.join(dataDir, 'admin.token');
export const caFile = (dataDir: string) => path.join(dataDir, 'pki', 'ca.pem');

/** The admin token and CA of a local deployment, for the `hades` command on the server's host. */
export function localCredentials(dataDir: string): { token: string; caPem: string } {
  const read = (file: string): string => {
    try {
      return readOwnFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new HadesError('HADES_ERR_LOCAL_CREDENTIALS', `no local server credentials in ${dataDir} (${file} is missing): start the server first; for a deployment started with hades start --data DIR, pass --config DIR/server.yaml (or set HADES_SERVER_CONFIG to it); for another server, pass --server and --token`);
      if (code === 'EACCES' || code === 'EPERM') throw new HadesError('HADES_ERR_LOCAL_CREDENTIALS', `cannot read ${file}: the local deployment's credentials are root's (run as root, or pass --token with an API token)`);
      throw new HadesError('HADES_ERR_LOCAL_CREDENTIALS', `cannot read ${file}: ${code ?? String(error)}`, { cause: error });
    }
  };
  const token = read(adminTokenFile(dataDir)).trim();
  return { token, caPem: read(caFile(dataDir)) };
}
