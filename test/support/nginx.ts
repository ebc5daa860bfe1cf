// Starts a throwaway nginx in front of several Parley nodes: plain round-robin, no ip_hash, no
// sticky sessions, so that consecutive requests of one client land on different nodes. The
// configuration is generated into a fresh temporary directory (pid, logs and every temp path
// inside it) and is the one docs/scaling.md shows. Where nginx is missing the suites that need
// it skip, unless PARLEY_REQUIRE_NGINX=1 (CI), where that is a failure.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onFreePort, PortTaken } from './ports.js'

const candidates = [
  process.env.PARLEY_NGINX,
  '/usr/sbin/nginx',
  '/usr/bin/nginx',
  '/usr/local/sbin/nginx',
].filter((p): p is string => typeof p === 'string' && p !== '')

/** The nginx executable, or undefined when there is none. */
export const nginxPath: string | undefined = candidates.find((p) => existsSync(p))

/** True when nginx suites must run (CI): a missing nginx then fails the suite. */
export const nginxRequired = process.env.PARLEY_REQUIRE_NGINX === '1'

/** Whether to skip the nginx suites here; throws when they are required but cannot run. */
export function skipNginxSuites(): boolean {
  if (nginxPath) return false
  if (nginxRequired) {
    throw new Error(
      'PARLEY_REQUIRE_NGINX=1 but no nginx was found (install Debian nginx-light or set PARLEY_NGINX)',
    )
  }
  console.warn('skipped: no nginx (the cluster tests need /usr/sbin/nginx, or PARLEY_NGINX)')
  return true
}

export interface NginxConfigOptions {
  /** nginx's worker_connections: two per proxied connection. Default 1024. */
  workerConnections?: number
  /** Directory for the pid file, the logs and the temp paths. */
  dir: string
  /** Address nginx listens on. */
  host: string
  port: number
  /** Ports of the Parley nodes on 127.0.0.1. */
  upstreamPorts: readonly number[]
}

/**
 * The configuration: round-robin over the nodes, WebSocket upgrades passed through, nothing
 * buffered in either direction (an SSE stream or a held poll must reach the client as it is
 * written), timeouts well above the ping interval (20 s) and the poll hold (at most one ping
 * interval), so that nginx never cuts a quiet but healthy transport.
 */
export function nginxConfig({
  dir,
  host,
  port,
  upstreamPorts,
  workerConnections = 1024,
}: NginxConfigOptions): string {
  const servers = upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
  worker_connections ${workerConnections};
}

http {
  # SSE and polling URLs carry the session id, a secret (whoever holds it can resume the
  # session): logged cut to its first six characters, as the Parley server logs it. Its key is
  # matched as the server reads it: after a ?, #, ; or &, each letter plain or percent-escaped
  # (%73id= is sid too). All that follows the first sid's six characters is dropped, a second
  # sid with it.
  map $request_uri $parley_logged_uri {
    "~^(?<kept>.*?[?#;&](?:s|%73)(?:i|%69)(?:d|%64)=[^&]{0,6})" "$kept...";
    default $request_uri;
  }
  # Which node served each request ($upstream_addr: more than one when nginx had to try another).
  log_format parley '$remote_addr [$time_local] "$request_method $parley_logged_uri" $status $upstream_addr';
  access_log ${dir}/access.log parley;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  # WebSocket upgrades: pass Upgrade on, and Connection: upgrade only when asked.
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }

  # Round-robin: no ip_hash, no sticky cookie. Any node serves any request of any session.
  # max_fails=0: a node that refused a connection (restarting) or answered 503 (draining) is
  # never marked failed; that one request goes on to the next node (proxy_next_upstream below).
  # nginx clears a failed mark only when a request sent after it has ended, and WebSockets and
  # SSE streams end late: once every node had failed once, nginx would answer 502 to nearly
  # every new client for as long as the streams it passed stay open.
  upstream parley {
${servers}
  }

  server {
    listen ${host}:${port};

    location / {
      proxy_pass http://parley;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      # SSE streams and held polls go out as they are written; uploads go in as they come.
      proxy_buffering off;
      proxy_request_buffering off;
      # A draining node refuses new sessions with 503 (and a node that is down, the connection):
      # try the next node, for POSTs too (Parley drops a packet it already has, by its number).
      proxy_next_upstream error timeout http_503 non_idempotent;
      # A node whose host does not answer at all is given up for the next one after 2 s (nginx
      # never leaves a node out by itself here: health checks of the orchestrator do that).
      proxy_connect_timeout 2s;
      # Above the ping interval and the poll hold: a quiet transport is not a dead one.
      proxy_read_timeout 75s;
      proxy_send_timeout 75s;
    }
  }
}
`
}

export interface Nginx {
  readonly port: number
  /** `http://127.0.0.1:<port>` (or the host it listens on). */
  readonly url: string
  /** The generated configuration's directory. */
  readonly dir: string
  /** What nginx logged so far (error log), for a failing test's message. */
  errors(): string
  /** The requests nginx finished so far (a WebSocket or an SSE stream once it closed). */
  requests(): NginxRequest[]
  /** Stops nginx by its PID (SIGTERM, then SIGKILL after 2 s) and removes its directory. */
  stop(): Promise<void>
}

/** A line of the access log. */
export interface NginxRequest {
  method: string
  /** The path and query string, cut after the first six characters of its first session id. */
  url: string
  status: number
  /** The node that answered last (`127.0.0.1:3001`); nginx tried the others first, if any. */
  upstream: string
  /** Every node nginx tried for it, in order. */
  tried: string[]
}

export interface StartNginxOptions {
  /** worker_connections (default 1024: enough for 500 proxied connections). */
  workerConnections?: number
  /** Port to listen on; a free one by default. */
  port?: number
  /** Address to listen on; 127.0.0.1 by default. */
  host?: string
  /**
   * How a port is picked when none is given (default `freePort`): a test of this file forces
   * one that another server holds.
   */
  pickPort?: () => Promise<number>
}

/** Starts nginx round-robin over `upstreamPorts` and waits until it answers. */
export async function startNginx(
  upstreamPorts: readonly number[],
  options: StartNginxOptions = {},
): Promise<Nginx> {
  if (!nginxPath) throw new Error('no nginx')
  if (upstreamPorts.length === 0) throw new Error('startNginx needs at least one upstream port')
  if (options.port !== undefined) return launch(nginxPath, upstreamPorts, options.port, options)
  // A port free when asked may be taken before nginx binds it: then another one.
  return onFreePort((port) => launch(nginxPath, upstreamPorts, port, options), options.pickPort)
}

/** Starts nginx on `port`; rejects with PortTaken when another process holds it. */
async function launch(
  path: string,
  upstreamPorts: readonly number[],
  port: number,
  options: StartNginxOptions,
): Promise<Nginx> {
  const host = options.host ?? '127.0.0.1'
  const dir = mkdtempSync(join(tmpdir(), 'parley-nginx-'))
  // nginx's workers run as another user when the master is root: they must reach the directory.
  chmodSync(dir, 0o755)
  const conf = join(dir, 'nginx.conf')
  const { workerConnections } = options
  writeFileSync(
    conf,
    nginxConfig({ dir, host, port, upstreamPorts, ...(workerConnections ? { workerConnections } : {}) }),
  )

  let output = ''
  const child = spawn(path, ['-p', dir, '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so that a master that must be killed takes its worker along.
    detached: true,
  })
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const errors = () => {
    const log = join(dir, 'error.log')
    return output + (existsSync(log) ? readFileSync(log, 'utf8') : '')
  }
  const requests = () => {
    const log = join(dir, 'access.log')
    if (!existsSync(log)) return []
    return readFileSync(log, 'utf8').split('\n').flatMap(parseLine)
  }
  const stop = async () => {
    await kill(child)
    rmSync(dir, { recursive: true, force: true })
  }

  const deadline = performance.now() + 10_000
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`
  while (performance.now() < deadline) {
    if (child.exitCode !== null) {
      const why = errors()
      rmSync(dir, { recursive: true, force: true })
      // nginx tries to bind for 2 s, then gives up: the port is another process's.
      if (/Address already in use/.test(why)) throw new PortTaken(port, why.trim())
      throw new Error(`nginx exited with ${child.exitCode}: ${why.trim()}`)
    }
    // Something answering on the port may be another file's server, there first. nginx writes
    // its pid file once it holds its listening socket: with our child's pid in it, what
    // answers is ours.
    if (pidFile(dir) === child.pid && (await answers(url))) {
      return { port, url, dir, errors, requests, stop }
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const why = errors()
  await stop()
  throw new Error(`nginx did not answer on ${url} within 10 s: ${why.trim()}`)
}

/** The process id in nginx's pid file, or undefined before nginx wrote it. */
function pidFile(dir: string): number | undefined {
  const file = join(dir, 'nginx.pid')
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

const LINE = /"(\S+) (\S+)" (\d{3}) (.*)$/

function parseLine(line: string): NginxRequest[] {
  const match = LINE.exec(line)
  if (!match) return []
  // "127.0.0.1:3001, 127.0.0.1:3002": nginx tried the first, then the second answered.
  const tried = match[4]!.split(/\s*,\s*|\s+:\s+/).filter((a) => a !== '' && a !== '-')
  return [
    {
      method: match[1]!,
      url: match[2]!,
      status: Number(match[3]),
      upstream: tried[tried.length - 1] ?? '-',
      tried,
    },
  ]
}

/** True when something answers HTTP at `url` (any status: nginx answers 502 without nodes). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/`, { timeout: 500, agent: false }, (res) => {
      res.resume()
      resolve(true)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    }, 2000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** The installed nginx's version line, for test logs. */
export function nginxVersion(): string | undefined {
  if (!nginxPath) return undefined
  return spawnSync(nginxPath, ['-v'], { encoding: 'utf8' }).stderr.trim()
}
