/**
 * A bench helper process driven over IPC (the poll client, the webhook receiver): spawned as
 * `node --import tsx <script>` through bash with the open-files limit raised, tracked (killed
 * with the run), and asked things with request({op, …}) → the answer with the same id.
 * Messages without an id are events, handed to onEvent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, track, withNofile } from './proc.ts';

export class IpcChild {
  private next = 1;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;
  onEvent: (msg: Record<string, unknown>) => void = () => {};

  constructor(
    script: string,
    private readonly what: string,
  ) {
    const [command, args] = withNofile(process.execPath, ['--import', 'tsx', join(ROOT, script)]);
    this.child = track(spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.child.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
      if (m.id === undefined) {
        this.onEvent(m as Record<string, unknown>);
        return;
      }
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new Error(`${this.what}: ${m.error}`));
    });
    this.child.once('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${this.what} exited (${code})`));
      this.waiting.clear();
    });
  }

  request<T>(msg: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.what} did not answer ${String(msg.op)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...msg, id });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.request({ op: 'close' }, 5000).catch(() => this.child.kill('SIGKILL'));
    await exited;
  }
}

/**
 * The child's side: answers each request from the parent with handle()'s result (same id),
 * and exits when the parent goes away.
 */
export function serveParent<M extends { id?: number }>(handle: (msg: M) => Promise<unknown>): void {
  process.on('message', (msg: M) => {
    handle(msg).then(
      (result) => process.send!({ id: msg.id, ok: true, result }),
      (error: Error) => process.send!({ id: msg.id, ok: false, error: error.stack ?? String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
