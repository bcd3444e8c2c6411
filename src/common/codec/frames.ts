/**
 * Length-prefixed frames, the unit of every pipe between the agent and its plugins (the
 * driver first). A frame is an 8-byte header (u32 payload length, u16 type, u16 flags; all
 * little-endian) and the payload. The reader is incremental: feed it chunks as they arrive and
 * it yields whole frames, copying only when a frame spans chunks.
 */
import { HadesError } from '../errors.js';

export const FRAME_HEADER_SIZE = 8;
/** Largest payload accepted: anything larger means the stream is corrupt. */
export const FRAME_MAX_PAYLOAD = 1 << 20;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly payload: Uint8Array;
}

export function encodeFrame(type: number, payload: Uint8Array, flags = 0): Uint8Array {
  if (payload.length > FRAME_MAX_PAYLOAD) {
    throw new HadesError('HADES_ERR_FRAME_TOO_LARGE', `frame payload of ${payload.length} bytes exceeds ${FRAME_MAX_PAYLOAD}`);
  }
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint16(4, type, true);
  view.setUint16(6, flags, true);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

export class FrameReader {
  private pending: Uint8Array = new Uint8Array(0);
  private readonly maxPayload: number;

  constructor(maxPayload = FRAME_MAX_PAYLOAD) {
    this.maxPayload = maxPayload;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Appends a chunk and returns the frames it completes. Throws HADES_ERR_FRAME_TOO_LARGE on a
   * header announcing more than the limit: the stream cannot be trusted after that.
   */
  push(chunk: Uint8Array): Frame[] {
    const { frames, error } = this.read(chunk);
    if (error) throw error;
    return frames;
  }

  /**
   * Like push, but a header announcing more than the limit ends the reading with `error`
   * instead of a throw: the whole frames before it in the same chunk are returned too (an ACK
   * that came just before a broken frame is still an answer).
   */
  read(chunk: Uint8Array): { frames: Frame[]; error?: HadesError } {
    let data: Uint8Array;
    if (this.pending.length === 0) {
      data = chunk;
    } else {
      data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending, 0);
      data.set(chunk, this.pending.length);
    }
    const frames: Frame[] = [];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER_SIZE) {
      const length = view.getUint32(offset, true);
      if (length > this.maxPayload) {
        this.pending = new Uint8Array(0);
        const error = new HadesError('HADES_ERR_FRAME_TOO_LARGE', `frame header announces ${length} bytes; the limit is ${this.maxPayload}`, {
          details: { length, type: view.getUint16(offset + 4, true) },
        });
        return { frames, error };
      }
      if (data.length - offset - FRAME_HEADER_SIZE < length) break;
      frames.push({
        type: view.getUint16(offset + 4, true),
        flags: view.getUint16(offset + 6, true),
        payload: data.subarray(offset + FRAME_HEADER_SIZE, offset + FRAME_HEADER_SIZE + length),
      });
      offset += FRAME_HEADER_SIZE + length;
    }
    // Keep the tail; copy it so that the caller's chunk can be reused.
    this.pending = offset === data.length ? new Uint8Array(0) : data.slice(offset);
    return { frames };
  }
}
