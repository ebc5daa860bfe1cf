// How many connections the scenarios of steps (idle, fanout) can open on this machine: the
// server needs a file per connection, the load generator one per socket, both under the same
// limit (the runner's, which its children inherit; Node raises the soft limit to the hard one).

import { readFileSync } from 'node:fs'

/** The soft limit on open files of this process (Linux), or Infinity where unknown. */
export function openFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
    return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft)
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

/**
 * Connections one client holds (each is a file at both ends on loopback): two for an SSE client
 * (its stream, and the keep-alive connection of its POSTs) and for socket.io's polling (its PONGs
 * go in POSTs); one for Parley's polling, whose PONGs and ACKs ride in its GETs.
 */
export const socketsPerClient = (kind: string): number =>
  kind.endsWith('sse') || kind === 'socketio-polling' || kind === 'socketio-thin-polling' ? 2 : 1

/** Open files a process needs besides its connections (stdio, the event loop, IPC, modules). */
const OTHER_FILES = 200

/** The most clients of `kind` that fit under `limit` open files, in hundreds. */
export function mostClients(kind: string, limit: number): number {
  return Math.floor((limit - OTHER_FILES) / socketsPerClient(kind) / 100) * 100
}

/** What `n` clients of `kind` need in open files, against `limit`. */
function filesNeeded(kind: string, n: number, limit: number): string {
  const files = n * socketsPerClient(kind) + OTHER_FILES
  return (
    `${n} clients need about ${files} open files in the server and as many in the load generator, ` +
    `and the limit here is ${limit} (raise the hard limit, \`ulimit -Hn\`, before \`pnpm bench\`)`
  )
}

/**
 * How many clients a step of `n` (`unit`, on top of `base` clients open throughout) opens under
 * `limit`: `n`, or past the limit the most it allows, with a note, so that the step still shows
 * how cost grows; 0, with a note, when that is no more than `previous`, the step before's. The
 * step's columns keep its name either way.
 */
export function clientsForStep(
  kind: string,
  n: number,
  base: number,
  previous: number,
  unit: string,
  notes: string[],
  limit: number,
): number {
  const opened = Math.min(n, mostClients(kind, limit) - base)
  if (opened <= previous) {
    notes.push(`${n} ${unit} not measured: ${filesNeeded(kind, base + n, limit)}`)
    return 0
  }
  if (opened < n)
    notes.push(`${n} ${unit}: measured with ${opened}, as ${filesNeeded(kind, base + n, limit)}`)
  return opened
}
