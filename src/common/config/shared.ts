import { Type } from '@sinclair/typebox';

export const LogLevel = Type.Union(
  [Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')],
  { default: 'info', description: 'Least severe level written.' },
);

export const LogConfig = Type.Object(
  {
    level: LogLevel,
    file: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description: 'Path of the log file; null writes to standard error.',
    }),
    max_mb: Type.Integer({ minimum: 1, maximum: 1024, default: 16, description: 'Size at which the log file rotates.' }),
    max_files: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Rotated files kept.' }),
    write_kb_per_s: Type.Integer({
      minimum: 0,
      maximum: 1_048_576,
      default: 1024,
      description: 'Disk write rate limit for logs in KiB/s (bursts of four seconds pass); lines over it are dropped and counted. 0 is unlimited.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Structured JSON logging.' },
);
