/**
 * Completes events that do not come from the kernel event builder (plugin events, the agent's
 * own health, drop and gap reports): the next id and sequence number from the agent's one
 * sequencer, the ECS kind, category and type of the action, the host and the agent.
 */
import { eventKinds, type EventAction, type HadesEvent } from '../../common/events/index.js';
import type { Sequencer } from '../sequencer.js';

export interface HostFields {
  readonly name: string;
  readonly hostname?: string;
  readonly id?: string;
  readonly architecture?: string;
  readonly os?: { readonly type?: string; readonly kernel?: string };
}

export class EventStamp {
  private readonly agent: { version: string; type: 'hades'; id?: string };

  constructor(
    private readonly sequencer: Sequencer,
    readonly host: HostFields,
    agentVersion: string,
    agentId?: string,
  ) {
    this.agent = { ...(agentId ? { id: agentId } : {}), version: agentVersion, type: 'hades' };
  }

  /**
   * Fills the common fields of an event of a known action. Fields the source set are kept,
   * except the ones only the agent may set (id, sequence, host, agent).
   */
  complete(action: EventAction, body: Readonly<Record<string, unknown>>, timestamp?: string): HadesEvent {
    const spec = eventKinds[action];
    const sequence = this.sequencer.next();
    const given = (body['event'] ?? {}) as Record<string, unknown>;
    const event: Record<string, unknown> = {
      ...body,
      '@timestamp': timestamp ?? (typeof body['@timestamp'] === 'string' ? body['@timestamp'] : new Date().toISOString()),
      event: {
        ...given,
        id: this.sequencer.id(sequence),
        kind: spec.kind,
        category: [...spec.category],
        type: given['type'] !== undefined ? given['type'] : [...spec.type],
        action,
        sequence,
      },
      host: this.host,
      agent: this.agent,
    };
    return event as unknown as HadesEvent;
  }
}
