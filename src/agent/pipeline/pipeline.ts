/**
 * The agent's pipeline: sources (the kernel driver, plugins, the agent's own reports) push
 * complete events; each is enriched, serialised once and handed to every output channel. When a
 * channel cannot take more (a slow stdout), push() returns false and the sources pause until
 * the pipeline drains: memory stays bounded and the loss, if any, happens where it is counted
 * (the kernel's ring buffer, a plugin's pipe).
 */
import type { HadesEvent } from '../../common/events/index.js';
import { serializeEvent } from '../serialize.js';
import type { ChannelStats, OutputChannel } from './channels.js';

export type Enricher = (event: HadesEvent) => void;

export interface PipelineStats {
  readonly in: number;
  readonly byAction: Readonly<Record<string, number>>;
  readonly outputs: readonly ChannelStats[];
  readonly paused: boolean;
}

export class Pipeline {
  private readonly waiting = new Set<OutputChannel>();
  private readonly drainListeners = new Set<() => void>();
  private readonly byAction = new Map<string, number>();
  private received = 0;

  constructor(
    private channels: readonly OutputChannel[],
    private readonly enrichers: readonly Enricher[] = [],
  ) {
    for (const channel of channels) this.attach(channel);
  }

  private attach(channel: OutputChannel): void {
    channel.onDrain = () => {
      if (!this.waiting.delete(channel) || this.waiting.size > 0) return;
      for (const listener of [...this.drainListeners]) listener();
    };
  }

  /** Takes one event. Returns false when the sources should wait for a drain listener. */
  push(event: HadesEvent): boolean {
    this.received++;
    const action = event.event.action;
    this.byAction.set(action, (this.byAction.get(action) ?? 0) + 1);
    for (const enrich of this.enrichers) enrich(event);
    const line = serializeEvent(event);
    for (const channel of this.channels) {
      if (!channel.write(line)) this.waiting.add(channel);
    }
    return this.waiting.size === 0;
  }

  get paused(): boolean {
    return this.waiting.size > 0;
  }

  /** Called when the pipeline can take events again after push() returned false. */
  onDrain(listener: () => void): () => void {
    this.drainListeners.add(listener);
    return () => this.drainListeners.delete(listener);
  }

  /** Swaps the output channels (config reload); returns the old ones for the caller to close. */
  replaceChannels(channels: readonly OutputChannel[]): readonly OutputChannel[] {
    const old = this.channels;
    this.channels = channels;
    this.waiting.clear();
    for (const channel of channels) this.attach(channel);
    for (const listener of [...this.drainListeners]) listener();
    return old;
  }

  get outputs(): readonly OutputChannel[] {
    return this.channels;
  }

  stats(): PipelineStats {
    return {
      in: this.received,
      byAction: Object.fromEntries(this.byAction),
      outputs: this.channels.map((c) => c.stats()),
      paused: this.paused,
    };
  }

  /** Closes every channel, letting each deliver what it can within the deadline. */
  async close(deadlineMs: number): Promise<void> {
    await Promise.all(this.channels.map((c) => c.close(deadlineMs)));
  }
}
