/**
 * The CMDB's parsing thread (cmdb.ts): reads, checks and parses the file it is given, hands the
 * packed tables back (moved, not copied) or the problem, and ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HadesError, toHadesError } from '../common/errors.js';
import { loadCmdbFile, type CmdbLoad } from './cmdb.js';

const port = parentPort;
if (port === null) throw new HadesError('HADES_ERR_INTERNAL', 'the CMDB parser runs as a worker thread');
const { file } = workerData as { file: string };
let answer: CmdbLoad;
try {
  answer = loadCmdbFile(file);
} catch (error) {
  answer = { ok: false, message: toHadesError(error).message };
}
port.postMessage(answer, answer.ok ? [answer.byName, answer.byShort, answer.byAddress] : []);
