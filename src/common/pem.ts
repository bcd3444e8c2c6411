/**
 * PEM bundles of certificates (a CA file, the CAs of a rotation): the blocks they hold, for the
 * agent, the server and the alert outputs alike.
 */

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Each certificate block of a bundle, BEGIN to END lines, in order. */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERTIFICATE)].map((m) => m[0]);
}

/** What a bundle holds besides its certificate blocks, whitespace trimmed ('' for a bundle of certificates only). */
export function pemLeftover(text: string): string {
  return text.replace(PEM_CERTIFICATE, '').trim();
}
