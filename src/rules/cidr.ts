/**
 * Address ranges for `in_cidr`: IPv4 and IPv6 networks (`10.0.0.0/8`, `fe80::/10`) or single
 * addresses. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) match IPv4 ranges, as the kernel
 * reports IPv4 peers of dual-stack sockets that way, and IPv4 addresses match ranges of mapped
 * ones (`::ffff:10.0.0.0/104`).
 */

/** An IPv4 address as an unsigned 32-bit number, or undefined. */
export function parseIpv4(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final '.'
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else if (c === 46) {
      if (digits === 0 || ++parts > 4) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else return undefined;
  }
  return parts === 4 ? value : undefined;
}

/** An IPv6 address as eight 16-bit groups, or undefined. A zone (`%eth0`) is ignored. */
export function parseIpv6(input: string): number[] | undefined {
  const text = input.includes('%') ? input.slice(0, input.indexOf('%')) : input;
  if (!text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseHalf = (half: string): number[] | undefined => {
    if (half === '') return [];
    const groups: number[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 === undefined) return undefined;
        groups.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        groups.push(parseInt(p, 16));
      }
    }
    return groups;
  };
  const head = parseHalf(halves[0]!);
  const tail = halves.length === 2 ? parseHalf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const fill = 8 - head.length - tail.length;
  if (fill < 1) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...tail];
}

export interface CidrRange {
  readonly text: string;
  readonly v4?: { readonly base: number; readonly mask: number };
  readonly v6?: { readonly groups: readonly number[]; readonly bits: number };
}

/** Parses `a.b.c.d/n`, `x::y/n` or a single address; undefined when malformed. */
export function parseCidr(text: string): CidrRange | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const bitsText = slash < 0 ? undefined : text.slice(slash + 1);
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return undefined;
  const v4 = parseIpv4(address);
  if (v4 !== undefined) {
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (bits > 32) return undefined;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return { text, v4: { base: (v4 & mask) >>> 0, mask } };
  }
  const v6 = parseIpv6(address);
  if (v6 !== undefined) {
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    if (bits > 128) return undefined;
    return { text, v6: { groups: v6, bits } };
  }
  return undefined;
}

function v6InRange(groups: readonly number[], range: { readonly groups: readonly number[]; readonly bits: number }): boolean {
  let bits = range.bits;
  for (let i = 0; i < 8 && bits > 0; i++) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((groups[i]! & mask) !== (range.groups[i]! & mask)) return false;
    bits -= take;
  }
  return true;
}

/** Whether the groups begin with the IPv4-mapped prefix, ::ffff:0:0/96. */
function isMapped(g: readonly number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** A tester for an address string against a set of ranges. */
export function cidrMatcher(ranges: readonly CidrRange[]): (address: string) => boolean {
  const v4 = ranges.filter((r) => r.v4).map((r) => r.v4!);
  const v6 = ranges.filter((r) => r.v6).map((r) => r.v6!);
  const testV4 = (a: number) => {
    for (const r of v4) if (((a & r.mask) >>> 0) === r.base) return true;
    return false;
  };
  return (address) => {
    const a4 = parseIpv4(address);
    if (a4 !== undefined) {
      if (testV4(a4)) return true;
      // As the IPv4-mapped address it is to an IPv6 range (::ffff:10.0.0.0/104, ::/0).
      if (v6.length === 0) return false;
      const mapped = [0, 0, 0, 0, 0, 0xffff, Math.floor(a4 / 65536), a4 % 65536];
      for (const r of v6) if (v6InRange(mapped, r)) return true;
      return false;
    }
    const a6 = parseIpv6(address);
    if (a6 === undefined) return false;
    // ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket.
    if (v4.length > 0 && isMapped(a6)) {
      if (testV4(a6[6]! * 65536 + a6[7]!)) return true;
    }
    for (const r of v6) if (v6InRange(a6, r)) return true;
    return false;
  };
}
