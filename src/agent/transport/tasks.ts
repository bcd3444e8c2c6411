/**
 * The tasks the agent was sent, so that each runs once. The server sends every task it has no
 * answer for again at each hello, since an answer may have been lost with a stream: a task seen
 * before is then not run again, but its answer is sent again once it has one. Owned by the
 * agent rather than by one transport, so that it holds across the new transport of a reload.
 *
 * Bounded: the last MAX_TASKS tasks and MAX_RESULT_BYTES of their answers; a task forgotten
 * (older, or its answer too large to keep) runs again if the server sends it again.
 */

/** An answer as it goes on the stream (TaskResult). */
export interface TaskAnswer {
  readonly status: 'done' | 'failed';
  readonly resultJson: string;
}

export const MAX_TASKS = 1024;
export const MAX_RESULT_BYTES = 16 * 1024 * 1024;

export class TaskLedger {
  /** By task id, oldest first: its answer and its size in bytes, or undefined while it runs. */
  readonly #tasks = new Map<string, { readonly answer: TaskAnswer; readonly bytes: number } | undefined>();
  #bytes = 0;

  constructor(
    private readonly maxTasks = MAX_TASKS,
    private readonly maxBytes = MAX_RESULT_BYTES,
  ) {}

  /**
   * A task from the server: 'run' when it is new (it now counts as running), 'running' when it
   * runs already, or its answer, to send again.
   */
  receive(taskId: string): 'run' | 'running' | TaskAnswer {
    if (this.#tasks.has(taskId)) return this.#tasks.get(taskId)?.answer ?? 'running';
    this.#tasks.set(taskId, undefined);
    this.#trim();
    return 'run';
  }

  /** A task's answer, kept to be sent again. */
  finish(taskId: string, answer: TaskAnswer): void {
    this.#forget(taskId);
    const bytes = Buffer.byteLength(answer.resultJson);
    if (bytes > this.maxBytes) return;
    this.#tasks.set(taskId, { answer, bytes });
    this.#bytes += bytes;
    this.#trim();
  }

  get size(): number {
    return this.#tasks.size;
  }

  #forget(taskId: string): void {
    this.#bytes -= this.#tasks.get(taskId)?.bytes ?? 0;
    this.#tasks.delete(taskId);
  }

  #trim(): void {
    for (const taskId of this.#tasks.keys()) {
      if (this.#tasks.size <= this.maxTasks && this.#bytes <= this.maxBytes) return;
      this.#forget(taskId);
    }
  }
}
