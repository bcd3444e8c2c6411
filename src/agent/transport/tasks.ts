/**
 * The tasks the agent was sent, so that each runs once. The server sends every task it has no
 * answer for again at each hello, since an answer may have been lost with a stream: a task seen
 * before is then not run again, but its answer is sent again once it has one. Owned by the
 * agent rather than by one transport, so that it holds across the new transport of a reload.
 *
 * Bounded: the answers of the last MAX_TASKS tasks and MAX_RESULT_BYTES of them; an answer
 * forgotten (older, or too large to keep) means the task runs again if the server sends it
 * again. A task that runs is never forgotten, whatever comes after it, so it cannot run twice;
 * instead at most MAX_RUNNING_TASKS run at once, and a task past that is refused ('busy').
 */

/** An answer as it goes on the stream (TaskResult). */
export interface TaskAnswer {
  readonly status: 'done' | 'failed';
  readonly resultJson: string;
}

/** A task's answer from its status and result (any JSON value; none gives an empty result_json). */
export function taskAnswer(status: 'done' | 'failed', result: unknown): TaskAnswer {
  // JSON.stringify(undefined) is undefined: no result, as an empty result_json says.
  const json: string | undefined = JSON.stringify(result);
  return { status, resultJson: json ?? '' };
}

export const MAX_TASKS = 1024;
export const MAX_RESULT_BYTES = 16 * 1024 * 1024;
/**
 * Tasks running at once. Only `query` and `inventory` tasks run past the message that brought
 * them (the others answer at once), and the inventory collector takes 16 queries at a time:
 * the rest is room for tasks that wait for the collector to start.
 */
export const MAX_RUNNING_TASKS = 64;

export class TaskLedger {
  /** The tasks running now, by id. */
  readonly #running = new Set<string>();
  /** The answers kept, by task id, oldest first, with their size in bytes. */
  readonly #answers = new Map<string, { readonly answer: TaskAnswer; readonly bytes: number }>();
  #bytes = 0;

  constructor(
    private readonly maxTasks = MAX_TASKS,
    private readonly maxBytes = MAX_RESULT_BYTES,
    private readonly maxRunning = MAX_RUNNING_TASKS,
  ) {}

  /**
   * A task from the server: 'run' when it is new (it now counts as running until `finish`),
   * 'running' when it runs already, its answer, to send again, or 'busy' when it is new but
   * `maxRunning` tasks run already (it is not recorded: the caller answers it, with `finish`).
   */
  receive(taskId: string): 'run' | 'running' | 'busy' | TaskAnswer {
    if (this.#running.has(taskId)) return 'running';
    const kept = this.#answers.get(taskId);
    if (kept) return kept.answer;
    if (this.#running.size >= this.maxRunning) return 'busy';
    this.#running.add(taskId);
    return 'run';
  }

  /** A task's answer, kept to be sent again; the task no longer runs. */
  finish(taskId: string, answer: TaskAnswer): void {
    this.#running.delete(taskId);
    this.#bytes -= this.#answers.get(taskId)?.bytes ?? 0;
    this.#answers.delete(taskId);
    const bytes = Buffer.byteLength(answer.resultJson);
    if (bytes > this.maxBytes) return;
    this.#answers.set(taskId, { answer, bytes });
    this.#bytes += bytes;
    // Only answers are forgotten, the oldest first: a running task stays until it ends.
    for (const [oldest, kept] of this.#answers) {
      if (this.#answers.size <= this.maxTasks && this.#bytes <= this.maxBytes) return;
      this.#bytes -= kept.bytes;
      this.#answers.delete(oldest);
    }
  }

  /** Tasks known: running, or answered and kept. */
  get size(): number {
    return this.#running.size + this.#answers.size;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running.size;
  }
}
