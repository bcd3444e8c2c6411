/**
 * Parser of the DNS messages the driver captures on port 53 (RFC 1035 section 4, RFC 3596 for
 * AAAA, RFC 2782 for SRV, RFC 6891 for OPT). Pure: bytes in, a plain object out.
 *
 * The bytes are the first 512 bytes at most of a message a process sent or received, so they
 * may be cut short, and they may be crafted by malware to break or to fool the parser. Hence:
 * nothing here throws; every loop is bounded by the bytes or by a fixed cap; compression
 * pointers must point strictly backwards; names are escaped so that a label cannot smuggle in a
 * dot or a control character. A capture cut short is reported (`truncated`), not rejected.
 */
import { formatIpv4, formatIpv6 } from './net.js';

export interface DnsQuestion {
  name: string;
  type: string;
  class: string;
}

export interface DnsAnswer {
  name: string;
  type: string;
  ttl: number;
  data: string;
}

export interface DnsMessage {
  id: number;
  response: boolean;
  opcode: number;
  rcode: string;
  /** The header bits as sent; `tc` is the server's TC bit, unrelated to our capture. */
  flags: { aa: boolean; tc: boolean; rd: boolean; ra: boolean };
  questions: DnsQuestion[];
  answers: DnsAnswer[];
  /** The captured bytes end before the message does (capture cut, or a TCP length beyond them). */
  truncated: boolean;
  /**
   * Set (to a reason word) when the message is damaged after its first question: what came
   * before the damage is returned rather than dropped, so that a crafted answer section cannot
   * hide the question a process asked.
   */
  malformed?: string;
}

export type DnsParse = { ok: true; message: DnsMessage } | { ok: false; reason: string };

const HEADER_SIZE = 12;
const RR_FIXED_SIZE = 10; // type, class, ttl, rdlength
const MAX_QUESTIONS = 32;
const MAX_ANSWERS = 64;
/** RFC 1035 2.3.4: 255 bytes in wire form, which also bounds a name to 127 labels. */
const MAX_NAME_WIRE = 255;
const MAX_LABELS = 127;
/** Legitimate names take one or two hops; the backwards rule already ends every chain. */
const MAX_POINTER_HOPS = 32;
const MAX_DATA_CHARS = 1024;
const MAX_HEX_BYTES = 64;

const TYPE_A = 1;
const TYPE_NS = 2;
const TYPE_CNAME = 5;
const TYPE_SOA = 6;
const TYPE_PTR = 12;
const TYPE_MX = 15;
const TYPE_TXT = 16;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const TYPE_DNAME = 39;
const TYPE_OPT = 41;

// IANA "Resource Record (RR) TYPEs". A sparse array indexed by number: a lookup is one load and
// returns an interned string, so known types cost no allocation per record.
const TYPE_NAMES: (string | undefined)[] = [];
for (const [n, name] of [
  [1, 'A'], [2, 'NS'], [3, 'MD'], [4, 'MF'], [5, 'CNAME'], [6, 'SOA'], [7, 'MB'], [8, 'MG'], [9, 'MR'],
  [10, 'NULL'], [11, 'WKS'], [12, 'PTR'], [13, 'HINFO'], [14, 'MINFO'], [15, 'MX'], [16, 'TXT'], [17, 'RP'],
  [18, 'AFSDB'], [24, 'SIG'], [25, 'KEY'], [28, 'AAAA'], [29, 'LOC'], [33, 'SRV'], [35, 'NAPTR'], [36, 'KX'],
  [37, 'CERT'], [39, 'DNAME'], [41, 'OPT'], [42, 'APL'], [43, 'DS'], [44, 'SSHFP'], [45, 'IPSECKEY'],
  [46, 'RRSIG'], [47, 'NSEC'], [48, 'DNSKEY'], [49, 'DHCID'], [50, 'NSEC3'], [51, 'NSEC3PARAM'], [52, 'TLSA'],
  [53, 'SMIMEA'], [55, 'HIP'], [59, 'CDS'], [60, 'CDNSKEY'], [61, 'OPENPGPKEY'], [62, 'CSYNC'], [63, 'ZONEMD'],
  [64, 'SVCB'], [65, 'HTTPS'], [99, 'SPF'], [249, 'TKEY'], [250, 'TSIG'], [251, 'IXFR'], [252, 'AXFR'],
  [253, 'MAILB'], [254, 'MAILA'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'],
] as const) {
  TYPE_NAMES[n] = name;
}

/** The mnemonic of an RR type, or `TYPE<n>` (RFC 3597) for a number without one. */
export function dnsTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

function className(cls: number): string {
  switch (cls) {
    case 1:
      return 'IN';
    case 3:
      return 'CH';
    case 4:
      return 'HS';
    case 254:
      return 'NONE';
    case 255:
      return 'ANY';
    default:
      return `CLASS${cls}`;
  }
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

// Failures of the byte-level readers are negative numbers, so that one return value carries
// either the next position or the reason, without allocating a result object.
const E_TRUNCATED = -1;
const E_BAD_LABEL = -2;
const E_NAME_TOO_LONG = -3;
const E_POINTER_LOOP = -4;
const E_FORWARD_POINTER = -5;
const E_POINTER_OUT_OF_RANGE = -6;
const E_TOO_MANY_POINTERS = -7;
const E_BAD_RDATA = -8;

const REASONS = ['', 'truncated', 'bad_label', 'name_too_long', 'pointer_loop', 'forward_pointer', 'pointer_out_of_range', 'too_many_pointers', 'bad_rdata'];

function reasonOf(code: number): string {
  return REASONS[-code] ?? 'malformed';
}

/**
 * Text is assembled as ASCII bytes in this buffer and turned into a string once. The longest
 * name text is 1012 characters (253 label bytes all escaped as \DDD) and other data is capped at
 * MAX_DATA_CHARS, so 1024 bytes suffice; the writers still check the bound themselves.
 */
const SCRATCH_SIZE = 1024;
const scratch = Buffer.alloc(SCRATCH_SIZE);
/** Characters written by the last readName into `scratch`. */
let nameChars = 0;

const CH_BACKSLASH = 0x5c;
const CH_DOT = 0x2e;
const CH_SPACE = 0x20;
const CH_ZERO = 0x30;

/** Writes `\DDD` (RFC 1035 5.1, RFC 4343 2.1) at `at`; returns the position after it. */
function writeEscape(at: number, b: number): number {
  scratch[at] = CH_BACKSLASH;
  scratch[at + 1] = CH_ZERO + ((b / 100) | 0);
  scratch[at + 2] = CH_ZERO + (((b / 10) | 0) % 10);
  scratch[at + 3] = CH_ZERO + (b % 10);
  return at + 4;
}

/**
 * Reads the name at `pos` in `msg`, following compression pointers, and writes its text into
 * `scratch` (length in `nameChars`). The name's own bytes, up to its first pointer, must end by
 * `limit`. Returns the position after the name where it started (after its first pointer, if
 * any), or a negative E_* code.
 *
 * A pointer must target an offset after the header and before the start of the run of labels
 * that contains it: every hop then moves strictly backwards, so no chain can cycle, whatever
 * the bytes. (A compressor only ever points at a name written earlier, so no valid message is
 * rejected.) The hop cap bounds a chain of pointers to pointers, which adds no label bytes.
 */
function readName(msg: Uint8Array, pos: number, limit: number): number {
  let end = limit;
  let p = pos;
  let runStart = pos;
  let next = -1;
  let firstPointerEnd = -1;
  let hops = 0;
  let wire = 1; // the root label
  let labels = 0;
  let out = 0;
  for (;;) {
    if (p >= end) return E_TRUNCATED;
    const len = msg[p] ?? 0;
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (p + 1 >= end) return E_TRUNCATED;
      const target = ((len & 0x3f) << 8) | (msg[p + 1] ?? 0);
      if (target < HEADER_SIZE || target >= msg.length) return E_POINTER_OUT_OF_RANGE;
      if (firstPointerEnd < 0) firstPointerEnd = p + 2;
      if (target >= runStart) return target >= firstPointerEnd ? E_FORWARD_POINTER : E_POINTER_LOOP;
      if (++hops > MAX_POINTER_HOPS) return E_TOO_MANY_POINTERS;
      if (next < 0) next = p + 2;
      end = msg.length;
      p = target;
      runStart = target;
      continue;
    }
    // 0x40 (extended labels, RFC 6891 deprecates them) and 0x80 are not defined for names.
    if (kind !== 0) return E_BAD_LABEL;
    if (len === 0) break;
    wire += len + 1;
    if (wire > MAX_NAME_WIRE || ++labels > MAX_LABELS) return E_NAME_TOO_LONG;
    const stop = p + 1 + len;
    if (stop > end) return E_TRUNCATED;
    if (out > 0) scratch[out++] = CH_DOT;
    for (let i = p + 1; i < stop; i++) {
      const b = msg[i] ?? 0;
      // Printable ASCII except space, '.' and '\' is kept; everything else is escaped, so the
      // text has exactly the labels of the wire form and no control characters.
      if (b > CH_SPACE && b < 0x7f && b !== CH_DOT && b !== CH_BACKSLASH) scratch[out++] = b;
      else out = writeEscape(out, b);
    }
    p = stop;
  }
  if (out === 0) scratch[out++] = CH_DOT; // the root name
  nameChars = out;
  return next < 0 ? p + 1 : next;
}

function nameText(): string {
  return scratch.toString('latin1', 0, nameChars);
}

/** Skips a name without following its pointers (the sections we only walk past). */
function skipName(msg: Uint8Array, pos: number): number {
  const end = msg.length;
  let p = pos;
  // Each step consumes at least one byte, so the loop ends with the bytes.
  for (;;) {
    if (p >= end) return E_TRUNCATED;
    const len = msg[p] ?? 0;
    const kind = len & 0xc0;
    if (kind === 0xc0) return p + 2 > end ? E_TRUNCATED : p + 2;
    if (kind !== 0) return E_BAD_LABEL;
    if (len === 0) return p + 1;
    p += len + 1;
  }
}

const u16 = (msg: Uint8Array, at: number): number => ((msg[at] ?? 0) << 8) | (msg[at + 1] ?? 0);
const u32 = (msg: Uint8Array, at: number): number => ((u16(msg, at) << 16) | u16(msg, at + 2)) >>> 0;

/** Reads a name inside RDATA ending at `rdEnd`: the name's own bytes must stay inside it. */
function rdataName(msg: Uint8Array, pos: number, rdEnd: number): number {
  const next = readName(msg, pos, rdEnd);
  // The RDATA was captured whole, so a name running past it is malformed, not cut.
  return next === E_TRUNCATED ? E_BAD_RDATA : next;
}

/** Character-strings (TXT) joined by a space, `\` and non-printable bytes as \DDD, capped. */
function textData(msg: Uint8Array, start: number, end: number): string | number {
  let out = 0;
  let p = start;
  let full = false;
  while (p < end) {
    const len = msg[p] ?? 0;
    const stop = p + 1 + len;
    if (stop > end) return E_BAD_RDATA;
    if (!full) {
      if (p > start) {
        if (out < MAX_DATA_CHARS) scratch[out++] = CH_SPACE;
        else full = true;
      }
      for (let i = p + 1; i < stop && !full; i++) {
        const b = msg[i] ?? 0;
        if (b >= CH_SPACE && b < 0x7f && b !== CH_BACKSLASH) {
          if (out < MAX_DATA_CHARS) scratch[out++] = b;
          else full = true;
        } else if (out + 4 <= MAX_DATA_CHARS) {
          out = writeEscape(out, b);
        } else {
          full = true;
        }
      }
    }
    // The walk continues past the cap only to check the framing of the remaining strings.
    p = stop;
  }
  return scratch.toString('latin1', 0, out);
}

const HEX = '0123456789abcdef';

/** The first MAX_HEX_BYTES bytes in hex, for types without a text form here. */
function hexData(msg: Uint8Array, start: number, end: number): string {
  const stop = Math.min(end, start + MAX_HEX_BYTES);
  let out = 0;
  for (let i = start; i < stop; i++) {
    const b = msg[i] ?? 0;
    scratch[out++] = HEX.charCodeAt(b >> 4);
    scratch[out++] = HEX.charCodeAt(b & 15);
  }
  return scratch.toString('latin1', 0, out);
}

/** The text of an RDATA, or a negative E_* code when it does not match its type's layout. */
function rdataText(msg: Uint8Array, type: number, start: number, end: number): string | number {
  const len = end - start;
  switch (type) {
    case TYPE_A:
      return len === 4 ? formatIpv4(msg.subarray(start, end)) : E_BAD_RDATA;
    case TYPE_AAAA:
      return len === 16 ? formatIpv6(msg.subarray(start, end)) : E_BAD_RDATA;
    case TYPE_NS:
    case TYPE_CNAME:
    case TYPE_PTR:
    case TYPE_DNAME: {
      const next = rdataName(msg, start, end);
      if (next < 0) return next;
      return next === end ? nameText() : E_BAD_RDATA;
    }
    case TYPE_MX: {
      if (len < 3) return E_BAD_RDATA;
      const next = rdataName(msg, start + 2, end);
      if (next < 0) return next;
      return next === end ? `${u16(msg, start)} ${nameText()}` : E_BAD_RDATA;
    }
    case TYPE_SRV: {
      if (len < 7) return E_BAD_RDATA;
      const next = rdataName(msg, start + 6, end);
      if (next < 0) return next;
      return next === end ? `${u16(msg, start)} ${u16(msg, start + 2)} ${u16(msg, start + 4)} ${nameText()}` : E_BAD_RDATA;
    }
    case TYPE_SOA: {
      const afterMname = rdataName(msg, start, end);
      if (afterMname < 0) return afterMname;
      const mname = nameText();
      const afterRname = rdataName(msg, afterMname, end);
      if (afterRname < 0) return afterRname;
      if (afterRname + 20 !== end) return E_BAD_RDATA;
      const a = afterRname;
      return `${mname} ${nameText()} ${u32(msg, a)} ${u32(msg, a + 4)} ${u32(msg, a + 8)} ${u32(msg, a + 12)} ${u32(msg, a + 16)}`;
    }
    case TYPE_TXT:
      return textData(msg, start, end);
    default:
      return hexData(msg, start, end);
  }
}

function fail(code: number | string): DnsParse {
  return { ok: false, reason: typeof code === 'string' ? code : reasonOf(code) };
}

/**
 * Parses one DNS message: its header, questions and answer records. For TCP the bytes start
 * with the 2-byte length prefix (RFC 1035 4.2.2), which is skipped; bytes after the message it
 * announces (a second pipelined message) are ignored.
 *
 * Fails only when the header or the first question cannot be read; damage further on is
 * reported in `malformed` and a cut capture in `truncated`, with what came before.
 */
export function parseDns(bytes: Uint8Array, transport: 'udp' | 'tcp' = 'udp'): DnsParse {
  let msg = bytes;
  let truncated = false;
  if (transport === 'tcp') {
    if (bytes.length < 2) return fail('short_header');
    const length = u16(bytes, 0);
    if (2 + length < bytes.length) {
      msg = bytes.subarray(2, 2 + length);
    } else {
      msg = bytes.subarray(2);
      truncated = 2 + length > bytes.length;
    }
  }
  if (msg.length < HEADER_SIZE) return fail('short_header');

  const flags = u16(msg, 2);
  const qdcount = u16(msg, 4);
  const ancount = u16(msg, 6);
  // No arrays are sized from the counts: a count only says how far to try, the bytes say how
  // far the loops get (each record consumes at least one byte or ends the parse).
  const records = ancount + u16(msg, 8) + u16(msg, 10);
  const questions: DnsQuestion[] = [];
  const answers: DnsAnswer[] = [];
  let malformed: string | undefined;
  let pos = HEADER_SIZE;
  let framed = true; // false once the framing is lost: nothing after can be located

  for (let i = 0; i < qdcount; i++) {
    const keep = i < MAX_QUESTIONS;
    const next = keep ? readName(msg, pos, msg.length) : skipName(msg, pos);
    const failure = next < 0 ? next : next + 4 > msg.length ? E_TRUNCATED : 0;
    if (failure < 0) {
      if (i === 0) return fail(failure);
      if (failure === E_TRUNCATED) truncated = true;
      else malformed = reasonOf(failure);
      framed = false;
      break;
    }
    if (keep) questions.push({ name: nameText(), type: dnsTypeName(u16(msg, next)), class: className(u16(msg, next + 2)) });
    pos = next + 4;
  }

  // Answers are decoded; the authority and additional records are only walked past, which
  // tells whether the capture holds the whole message.
  for (let i = 0; framed && i < records; i++) {
    const keep = i < ancount && answers.length < MAX_ANSWERS;
    const next = keep ? readName(msg, pos, msg.length) : skipName(msg, pos);
    if (next < 0) {
      if (next === E_TRUNCATED) truncated = true;
      else malformed ??= reasonOf(next);
      break;
    }
    if (next + RR_FIXED_SIZE > msg.length) {
      truncated = true;
      break;
    }
    const type = u16(msg, next);
    const rdStart = next + RR_FIXED_SIZE;
    const rdEnd = rdStart + u16(msg, next + 8);
    if (rdEnd > msg.length) {
      truncated = true;
      break;
    }
    pos = rdEnd;
    // OPT belongs in the additional section only (RFC 6891 6.1.1); it is no answer anywhere.
    if (!keep || type === TYPE_OPT) continue;
    const name = nameText();
    const text = rdataText(msg, type, rdStart, rdEnd);
    let data: string;
    if (typeof text === 'string') {
      data = text;
    } else {
      // The record's framing is intact, so the parse goes on; the bytes are kept in hex.
      malformed ??= reasonOf(text);
      data = hexData(msg, rdStart, rdEnd);
    }
    answers.push({ name, type: dnsTypeName(type), ttl: u32(msg, next + 4), data });
  }

  const message: DnsMessage = {
    id: u16(msg, 0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: rcodeName(flags & 0xf),
    flags: { aa: (flags & 0x0400) !== 0, tc: (flags & 0x0200) !== 0, rd: (flags & 0x0100) !== 0, ra: (flags & 0x0080) !== 0 },
    questions,
    answers,
    truncated,
  };
  if (malformed !== undefined) message.malformed = malformed;
  return { ok: true, message };
}
