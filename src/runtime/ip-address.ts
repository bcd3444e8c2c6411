/**
 * IP addresses as text, written one way: the way agents write them in events, so that an address
 * given otherwise (by a CMDB, by an analyst's search) is compared with theirs as the same text.
 */
import { isIP, SocketAddress } from 'node:net';

/**
 * An IP address as agents give it (RFC 5952: lower case, zeros compressed; an IPv4 address mapped
 * into IPv6 as IPv4), or undefined when the text is none.
 */
export function canonicalAddress(text: string): string | undefined {
  const family = isIP(text);
  if (family === 0) return undefined;
  const address = new SocketAddress({ address: text, family: family === 6 ? 'ipv6' : 'ipv4' }).address;
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.exec(address) ? address.slice(7) : address;
}

/**
 * Every text under which an event may carry the address `text` (undefined when it is none): its
 * canonical form (canonicalAddress) and, for an IPv4 address, the same mapped into IPv6
 * (`::ffff:203.0.113.9`), which is how an agent writes the peer of a dual-stack (IPv6) socket
 * talking IPv4: the same host either way.
 */
export function addressForms(text: string): string[] | undefined {
  const address = canonicalAddress(text);
  if (address === undefined) return undefined;
  return isIP(address) === 4 ? [address, `::ffff:${address}`] : [address];
}
