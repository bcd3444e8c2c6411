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
  },
  { additionalProperties: false, default: {}, description: 'Structured JSON logging.' },
);
