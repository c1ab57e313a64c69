/**
 * The peer for the long-poll scenarios: nginx with the nchan module (Debian's nginx and
 * libnginx-mod-nchan), as a child process on a free loopback port.
 *
 * ensureNchan() installs both with apt-get when missing (root only); when that fails the
 * rows that need nchan say "nchan not available" and the run goes on.
 *
 * The nginx.conf is written into a temp dir: no daemon, master_process on, **worker_processes
 * 1** (pollgate is one process too), error_log into the temp dir, access log off, and:
 *   /pub?id=CH   nchan_publisher, channel $arg_id (POST a message; 201/202 answered once stored)
 *   /sub?id=CH   nchan_subscriber longpoll, first message "newest" (a fresh subscriber waits
 *                for the next message, as a pollgate consumer created at "latest" does)
 *   /nchan_status  nchan_stub_status (the number of subscribers held, to know all polls are in)
 * Message buffer: 10 messages per channel kept for 10 minutes, in 512 MiB of shared memory:
 * room for 10,000 channels of a few ~100-byte messages each many times over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { isAbsolute, join } from 'node:path';
import { childPids, makeTempDir, openFilesLimit, pssKiB, removeTempDir, rssKiB, spawnChild, type Child } from './proc.ts';

export type NchanAvailability =
  | { ok: true; nginx: string; nchan: string; module: string }
  | { ok: false; reason: string };

let cached: NchanAvailability | null = null;

const MODULE_CANDIDATES = ['/usr/lib/nginx/modules/ngx_nchan_module.so', '/usr/share/nginx/modules/ngx_nchan_module.so'];

function findModule(): string | null {
  for (const p of MODULE_CANDIDATES) if (existsSync(p)) return p;
  // Debian: modules-available/mod-nchan.conf says "load_module modules/ngx_nchan_module.so;"
  // relative to nginx's prefix, /usr/share/nginx.
  const conf = '/usr/share/nginx/modules-available/mod-nchan.conf';
  if (existsSync(conf)) {
    const m = /load_module\s+([^;\s]+)\s*;/.exec(readFileSync(conf, 'utf8'));
    if (m) {
      const p = isAbsolute(m[1]!) ? m[1]! : join('/usr/share/nginx', m[1]!);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

function nginxVersion(): string | null {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  return /nginx version: (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? null;
}

function nchanPackageVersion(): string {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && r.stdout ? `libnginx-mod-nchan ${r.stdout}` : 'nchan (version unknown)';
}

/** Finds nginx and the nchan module, or installs them with apt-get (root only). Never throws. */
export function ensureNchan(): NchanAvailability {
  if (cached) return cached;
  let version = nginxVersion();
  let module = findModule();
  if (!version || !module) {
    if (process.getuid?.() !== 0) {
      cached = { ok: false, reason: 'nginx/libnginx-mod-nchan not installed and we are not root' };
      return cached;
    }
    process.stderr.write('bench: nginx or the nchan module not found; installing nginx libnginx-mod-nchan with apt-get …\n');
    const opts = { stdio: 'inherit' as const, timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
    const update = spawnSync('apt-get', ['update', '-qq'], opts);
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'nginx', 'libnginx-mod-nchan'], opts) : update;
    version = nginxVersion();
    module = findModule();
    if (!version || !module) {
      cached = { ok: false, reason: `apt-get install nginx libnginx-mod-nchan failed (exit ${install.status ?? install.error?.message})` };
      return cached;
    }
  }
  cached = { ok: true, nginx: `nginx ${version}`, nchan: nchanPackageVersion(), module };
  return cached;
}

/** A free loopback port: bind port 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NchanServer {
  name: 'nchan';
  port: number;
  url: string;
  child: Child;
  /** The master and its workers. */
  pids(): number[];
  /** RSS of the master plus every worker, KiB. */
  rssKiB(): number;
  /** Per process: pid, role, RSS and PSS in KiB. */
  memory(): Array<{ pid: number; role: 'master' | 'worker'; rss: number; pss: number }>;
  /** Subscribers held right now, from nchan_stub_status. */
  subscribers(): Promise<number>;
  /** The worker's open-files limit (worker_rlimit_nofile). */
  workerNofile(): number | null;
  stop(): Promise<number | null>;
}

const WORKER_CONNECTIONS = 16_384;

export function nginxConf(dir: string, port: number, module: string): string {
  return `# Written by bench/lib/nchan.ts for one bench run.
load_module ${module};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${WORKER_CONNECTIONS + 1024};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections ${WORKER_CONNECTIONS};
  multi_accept on;
}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_max_body_size 8m;
  client_body_buffer_size 16k;
  nchan_shared_memory_size 512M;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /pub {
      nchan_publisher;
      nchan_channel_id $arg_id;
      nchan_message_buffer_length 10;
      nchan_message_timeout 10m;
    }
    location = /sub {
      nchan_subscriber longpoll;
      nchan_channel_id $arg_id;
      nchan_subscriber_first_message newest;
      nchan_subscriber_timeout 120s;
    }
    location = /nchan_status {
      nchan_stub_status;
    }
  }
}
`;
}

export async function startNchan(): Promise<NchanServer> {
  const avail = ensureNchan();
  if (!avail.ok) throw new Error(avail.reason);
  const dir = makeTempDir('nchan-bench');
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, port, avail.module));
  // -e: the error log before the config is read (else /var/log/nginx/error.log).
  const child = spawnChild('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/nchan_status`);
      await res.text();
      if (res.status === 200) break;
    } catch {
      // not yet
    }
    if (child.proc.exitCode !== null || Date.now() > deadline) {
      await child.stop(1000);
      let log = '';
      try {
        log = readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000);
      } catch {
        // none
      }
      throw new Error(`nginx did not start: ${child.tail()}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const master = child.proc.pid!;
  const pids = () => [master, ...childPids(master)];
  return {
    name: 'nchan',
    port,
    url,
    child,
    pids,
    rssKiB: () => pids().reduce((n, pid) => n + (rssKiB(pid) ?? 0), 0),
    memory: () => pids().map((pid) => ({ pid, role: pid === master ? ('master' as const) : ('worker' as const), rss: rssKiB(pid) ?? 0, pss: pssKiB(pid) ?? 0 })),
    async subscribers() {
      const res = await fetch(`${url}/nchan_status`);
      const text = await res.text();
      const m = /^subscribers: (\d+)/m.exec(text);
      if (!m) throw new Error(`no subscribers line in nchan_stub_status: ${text.slice(0, 200)}`);
      return Number(m[1]);
    },
    workerNofile: () => {
      const w = childPids(master)[0];
      return w === undefined ? null : openFilesLimit(w);
    },
    async stop() {
      const code = await child.stop(5000);
      removeTempDir(dir);
      return code;
    },
  };
}

/** A raw nchan publish of one message to one channel. */
export function nchanPublish(channel: string, body: string): string {
  return `POST /pub?id=${channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
