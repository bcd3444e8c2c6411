/**
 * Sigma compatibility: Sigma rule files converted into Hades rule files that `loadRules` loads
 * with the others, and a report of what could not be converted and why. Pure code, like the
 * rest of the rule engine. docs/sigma.md describes what is supported.
 */
export { convertSigma, type ConvertOptions, type SigmaConversion } from './convert.js';
export type { SigmaFile } from './document.js';
export { CATEGORIES, UNSUPPORTED_CATEGORIES, mappingRows, type CategorySpec, type FieldMapping } from './mapping.js';
export { loadRatio, reasonKey, summarize, type SigmaKind, type SigmaReason, type SigmaReportEntry, type SigmaStatus, type SigmaSummary } from './report.js';
