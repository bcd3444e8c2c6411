import { fileURLToPath } from 'node:url';
import { renderErrorsDoc, renderEventsDoc } from '../../src/common/docs.js';

/** The project root, from dist/test/helpers or test/helpers alike. */
export const projectRoot = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));

/** Every document generated from code, with its renderer. */
export const generatedDocs = [
  { file: `${projectRoot}docs/events.md`, render: renderEventsDoc },
  { file: `${projectRoot}docs/errors.md`, render: renderErrorsDoc },
] as const;
