/**
 * The V8 flags the agent daemon runs with, wherever it is started: the systemd unit
 * (deploy/hades-agent.service, checked by the install test), `hades start` and the benchmarks
 * that measure it.
 *
 * `--max-semi-space-size=4`: V8's young generation grows to 16 MiB a half by default, for the
 * modules loaded at start and again under a storm, and keeps that memory while idle: capped at
 * 4 MiB, the agent stays 12-15 MB smaller, idle and after storms, for the same CPU per exec
 * within the noise of three alternating storms (docs/perf.md, 2026-12-02 17:50 UTC).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
