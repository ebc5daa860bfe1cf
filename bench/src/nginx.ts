// nginx in front of the nodes of the multi-node scenarios: plain round-robin over loopback
// ports, no session affinity (no ip_hash, no cookie), as a balancer in front of stateless
// HTTP servers is usually set up. Its config, pid file, logs and temp files live in a temp
// directory of its own; it is stopped by its PID.
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { onFreePort, PortTaken } from '../../test/support/ports.ts'
import { now, sleep } from './stats.ts'

const candidates = [process.env.PARLEY_NGINX, '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']

/** The nginx executable, or undefined when there is none. */
export const nginxPath: string | undefined = candidates.find(
  (p): p is string => typeof p === 'string' && p !== '' && existsSync(p),
)

export interface Balancer {
  readonly port: number
  readonly url: string
  /** The master process (its workers are its children). */
  readonly pid: number
  /** Requests logged so far, by HTTP status (101 for WebSocket upgrades, once they end). */
  statuses(): Record<string, number>
  stop(): Promise<void>
}

/**
 * The config: one worker (the machine has two cores), an upstream over the nodes' ports
 * (round-robin, the default), HTTP/1.1 with Upgrade and Connection passed on for WebSocket,
 * no buffering (SSE and held polls stream through), and read timeouts well above the
 * heartbeats of both servers (Parley pings every 20 s, socket.io every 25 s).
 */
export function nginxConfig(dir: string, port: number, upstreams: readonly number[]): string {
  const p = (name: string) => path.join(dir, name)
  return `worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;

events {
  worker_connections 8192;
}

http {
  log_format bench '$status $request_method $upstream_addr';
  access_log ${p('access.log')} bench buffer=64k flush=100ms;
  client_body_temp_path ${p('client_body')};
  proxy_temp_path ${p('proxy')};
  fastcgi_temp_path ${p('fastcgi')};
  uwsgi_temp_path ${p('uwsgi')};
  scgi_temp_path ${p('scgi')};

  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }

  upstream nodes {
${upstreams.map((u) => `    server 127.0.0.1:${u};`).join('\n')}
    keepalive 64;
  }

  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
    }
  }
}
`
}

/**
 * Starts nginx over `upstreams` (loopback ports) and waits until it accepts connections.
 * `pickPort` picks its port (default `freePort`): a test forces one that another server holds.
 */
export function startBalancer(
  upstreams: readonly number[],
  track?: (c: ChildProcess) => void,
  pickPort?: () => Promise<number>,
) {
  // A port free when asked may be taken before nginx binds it (a test or another run picking
  // ports at the same time): then another one.
  return onFreePort((port) => launch(port, upstreams, track), pickPort)
}

/** Starts nginx on `port`; rejects with PortTaken when another process holds it. */
async function launch(
  port: number,
  upstreams: readonly number[],
  track?: (c: ChildProcess) => void,
): Promise<Balancer> {
  if (!nginxPath) throw new Error('no nginx')
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-nginx-'))
  // Workers drop to `nobody` when the master runs as root: let them reach their temp paths.
  chmodSync(dir, 0o755)
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, nginxConfig(dir, port, upstreams))
  const child = spawn(nginxPath, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  track?.(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const errors = () => {
    let log = ''
    try {
      log = readFileSync(path.join(dir, 'error.log'), 'utf8')
    } catch {}
    return `${stderr}${log}`.trim()
  }
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const stop = async () => {
    if (!exited()) {
      // SIGTERM: a fast shutdown, the master ends its workers; SIGKILL only if it hangs.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        child.kill('SIGTERM')
      })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = now() + 10_000
  // Something accepting on the port may be another program's server, there first. nginx writes
  // its pid file once it holds its listening socket: with our child's pid in it, it is ours.
  while (!(pidFile(dir) === child.pid && (await accepts(port)))) {
    if (exited() || now() > deadline) {
      const why = errors()
      await stop()
      // nginx tries to bind for 2 s, then gives up: the port is another process's.
      if (/Address already in use/.test(why)) throw new PortTaken(port, why)
      throw new Error(`nginx did not start: ${why || 'no answer'}`)
    }
    await sleep(50)
  }
  const balancer: Balancer = {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    statuses() {
      const counts: Record<string, number> = {}
      let text = ''
      try {
        text = readFileSync(path.join(dir, 'access.log'), 'utf8')
      } catch {}
      for (const line of text.split('\n')) {
        const status = line.split(' ')[0]
        if (status) counts[status] = (counts[status] ?? 0) + 1
      }
      return counts
    },
    stop,
  }
  return balancer
}

/** The process id in nginx's pid file, or undefined before nginx wrote it. */
function pidFile(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

async function accepts(port: number): Promise<boolean> {
  const net = await import('node:net')
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => done(true))
  })
}

/** CPU time (user + system) of a process and its children that are alive, in µs, from /proc. */
export function procCpuUs(pid: number): number {
  const ticks = 100 // USER_HZ on Linux
  const read = (p: number): number => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
      return ((Number(fields[11]) + Number(fields[12])) / ticks) * 1e6
    } catch {
      return 0
    }
  }
  let children: number[] = []
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {}
  return read(pid) + children.reduce((sum, c) => sum + read(c), 0)
}
