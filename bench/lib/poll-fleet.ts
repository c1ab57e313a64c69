/**
 * Drives lib/poll-client.ts processes over IPC: one or more client processes, each holding a
 * contiguous share of the polls; the first one also sends the publishes. Each client process
 * is spawned through bash with the open-files limit raised (10,000 sockets) and tracked, so
 * it is killed with the run.
 */
import { IpcChild } from './ipc.ts';
import type { CollectResult, PollMode, PollSpec, PublishResult } from './poll-client.ts';
import { openFilesLimit } from './proc.ts';

class PollClient extends IpcChild {
  constructor() {
    super('bench/lib/poll-client.ts', 'poll client');
  }
}

export interface FireResult extends PublishResult {
  /** Per poll (in the order given to init): answer arrival, -1 if none. */
  answerAt: number[];
  complete: boolean;
  missing: number;
  statuses: Record<string, number>;
  bad: number;
  badSample: string[];
}

export class PollFleet {
  private readonly clients: PollClient[];
  private per = 0;

  /** processes: BENCH_POLL_CLIENTS, default 1 (on 2 cores more client processes only compete with the server). */
  constructor(processes = Number(process.env.BENCH_POLL_CLIENTS ?? 1) || 1) {
    this.clients = Array.from({ length: processes }, () => new PollClient());
  }

  /** The client processes' open-files limits (they must hold their share of sockets). */
  nofile(): Array<number | null> {
    return this.clients.map((c) => openFilesLimit(c.child.pid));
  }

  /** publishPort: send the publishes to another node (default: the polls' server). */
  async init(port: number, mode: PollMode, polls: PollSpec[], publishPort?: number): Promise<void> {
    const per = Math.ceil(polls.length / this.clients.length);
    this.per = per;
    await Promise.all(this.clients.map((c, i) => c.request({ op: 'init', port, mode, polls: polls.slice(i * per, (i + 1) * per), publishPort })));
  }

  /** Sends one poll on each of the first `count` slots (default: all). */
  async arm(waitS: number, limit: number, count?: number): Promise<void> {
    await Promise.all(
      this.clients.map((c, i) => c.request({ op: 'arm', waitS, limit, count: count === undefined ? undefined : Math.max(0, Math.min(this.per, count - i * this.per)) })),
    );
  }

  async check(): Promise<{ early: number; pending: number; earlySample: string[] }> {
    const rs = await Promise.all(this.clients.map((c) => c.request<{ early: number; pending: number; earlySample: string[] }>({ op: 'check' })));
    return {
      early: rs.reduce((n, r) => n + r.early, 0),
      pending: rs.reduce((n, r) => n + r.pending, 0),
      earlySample: rs.flatMap((r) => r.earlySample).slice(0, 3),
    };
  }

  /** Sends the publish requests (client 0) and collects every poll's answer of this round. */
  async fire(round: number, requests: string[], conns: number, timeoutMs: number): Promise<FireResult> {
    await Promise.all(this.clients.map((c) => c.request({ op: 'fire' })));
    const collecting = Promise.all(this.clients.map((c) => c.request<CollectResult>({ op: 'collect', timeoutMs, round }, timeoutMs + 60_000)));
    const published = await this.clients[0]!.request<PublishResult>({ op: 'publish', requests, conns }, timeoutMs + 60_000);
    const collected = await collecting;
    const statuses: Record<string, number> = {};
    for (const c of collected) for (const [k, v] of Object.entries(c.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    const answerAt = collected.flatMap((c) => c.at);
    return {
      ...published,
      answerAt,
      complete: collected.every((c) => c.complete),
      missing: answerAt.filter((t) => t < 0).length,
      statuses,
      bad: collected.reduce((n, c) => n + c.bad, 0),
      badSample: collected.flatMap((c) => c.badSample).slice(0, 3),
    };
  }

  /** Closes every poll connection: the held polls end (client gone). */
  async drop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.request({ op: 'drop' })));
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }
}
