/**
 * A minimal HTTP/1.1 client over one raw node:net socket, for the client processes that time
 * servers (poll-client.ts, drain.ts, the push receiver's peer checks): hand-written requests,
 * keep-alive, pipelining (requests are answered in order), and a parser that reads the status
 * line, Content-Length and the few headers a caller asks for. No chunked encoding: pollgate,
 * bare Hono and nginx/nchan all answer these requests with a Content-Length.
 *
 * Times come from process.hrtime (CLOCK_MONOTONIC), which is one clock for every process on
 * the machine, so a request sent by one client process and a response received by another can
 * be subtracted.
 */
import net from 'node:net';

/** Milliseconds on the machine-wide monotonic clock (shared by all processes). */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface RawResponse {
  status: number;
  body: string;
  /** monoMs() when the last byte of the body arrived. */
  at: number;
  /** Lower-cased names of the headers asked for in the constructor, when present. */
  headers: Record<string, string>;
}

type Callback = (r: RawResponse) => void;

export class RawConnection {
  private socket: net.Socket | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  /** Callbacks of requests written and not yet answered, oldest first (pipelining). */
  private pending: Callback[] = [];

  constructor(
    private readonly port: number,
    private readonly wantHeaders: readonly string[] = [],
  ) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  get inFlight(): number {
    return this.pending.length;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
      socket.on('error', () => {}); // reported through 'close'
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('close', () => {
        // A socket already replaced (close() then connect()) must not touch the new one's state.
        if (this.socket === socket) this.dropped();
      });
      this.socket = socket;
    });
  }

  /** Writes the request (pipelined behind any in flight); cb gets its response (status 0 if the connection dropped). */
  send(request: string, cb: Callback): void {
    if (!this.socket) throw new Error('not connected');
    this.pending.push(cb);
    this.socket.write(request);
  }

  /** send() as a promise. */
  request(request: string): Promise<RawResponse> {
    return new Promise((resolve) => this.send(request, resolve));
  }

  close(): void {
    const socket = this.socket;
    if (!socket) return;
    this.dropped();
    socket.destroy();
  }

  /** The connection is gone: requests in flight get status 0, at once. */
  private dropped(): void {
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    const pending = this.pending;
    this.pending = [];
    const at = monoMs();
    for (const cb of pending) cb({ status: 0, body: 'connection closed', at, headers: {} });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = this.buffer.toString('latin1', 0, headerEnd);
      const status = Number(head.slice(9, 12));
      // 204 and 304 never have a body (RFC 9110), with or without a Content-Length.
      const length = status === 204 || status === 304 ? ['', '0'] : /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!length) {
        // Minimal on purpose: every server benched here answers with Content-Length.
        this.finish({ status: -1, body: `no content-length in: ${head.slice(0, 200)}`, at: monoMs(), headers: {} }, this.buffer.length);
        return;
      }
      const total = headerEnd + 4 + Number(length[1]);
      if (this.buffer.length < total) return;
      const at = monoMs();
      const headers: Record<string, string> = {};
      for (const name of this.wantHeaders) {
        const m = new RegExp(`\\r\\n${name}:\\s*([^\\r]*)`, 'i').exec(head);
        if (m) headers[name] = m[1]!;
      }
      this.finish({ status, body: this.buffer.toString('utf8', headerEnd + 4, total), at, headers }, total);
    }
  }

  private finish(r: RawResponse, consumed: number): void {
    this.buffer = this.buffer.subarray(consumed);
    const cb = this.pending.shift();
    cb?.(r);
  }
}

/** A raw request with an optional JSON body. */
export function rawRequest(method: string, path: string, opts: { auth?: string; body?: string; headers?: Record<string, string> } = {}): string {
  let text = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  if (opts.auth) text += `Authorization: Bearer ${opts.auth}\r\n`;
  for (const [k, v] of Object.entries(opts.headers ?? {})) text += `${k}: ${v}\r\n`;
  if (opts.body !== undefined) {
    text += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(opts.body)}\r\n`;
  }
  return `${text}\r\n${opts.body ?? ''}`;
}
