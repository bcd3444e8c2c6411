/**
 * The file output: NDJSON, one alert document per line, appended synchronously (a line written
 * is in the file if the server crashes next) and rotated by size through the project's
 * RotatingFile (`alerts.ndjson`, `.1` newest rotated, ... `.keep`).
 */
import type { FileOutputConfig } from '../../../common/config/alert-outputs.js';
import { RotatingFile } from '../../../runtime/rotating-file.js';
import { failure, type AlertTransport, type QueuedAlert } from './transport.js';

const MIB = 1024 * 1024;

export class FileTransport implements AlertTransport {
  readonly target: string;
  readonly truncated = 0;
  private readonly file: RotatingFile;
  private closed = false;

  constructor(config: FileOutputConfig) {
    this.target = config.path;
    this.file = new RotatingFile({ file: config.path, maxBytes: config.max_mb * MIB, maxFiles: config.keep, mode: 0o640 });
  }

  async deliver(item: QueuedAlert): Promise<void> {
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_WRITE', `${this.target}: the output is closed`, 'receiver');
    try {
      this.file.write(Buffer.from(`${item.json}\n`));
    } catch (error) {
      // A full disk or a permission is about the file, not the alert: it keeps its place.
      throw failure('HADES_ERR_ALERT_OUTPUT_WRITE', error instanceof Error ? error.message : String(error), 'receiver', error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } catch {
      // The descriptor is gone either way.
    }
  }
}
