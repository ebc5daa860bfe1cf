import type { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Server as NetServer } from 'node:net'
import type { Duplex } from 'node:stream'

/** A request as the server hands it over: HTTP/1.1's, or HTTP/2's (Node's compatibility API). */
export type RawRequest = IncomingMessage | Http2ServerRequest
export type RawResponse = ServerResponse | Http2ServerResponse
export type RequestListener = (this: unknown, req: RawRequest, res: RawResponse) => void
export type UpgradeListener = (this: unknown, req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** What one closing mount point answers itself, in front of the listeners it took the place of. */
export interface Takeover {
  /** Whether it answered the request: false, the listeners taken off the server get it. */
  request(req: RawRequest, res: RawResponse): boolean
  /** Whether it took or answered the upgrade, likewise. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean
}

/**
 * The takeovers on one server: one listener per event stands where the listeners they took off
 * were (Fastify's, @fastify/websocket's, ...), asks each takeover in turn (the latest first),
 * and hands what none answered to those listeners, as they were.
 *
 * One front per server, not a wrapper per takeover around the one before: mount points on one
 * server (sibling contexts, or Fastify instances given it by a `serverFactory`) close in any
 * order, and a wrapper around another's would keep it for ever, or lose it when taken off. Each
 * takeover leaves the front when its mount point has closed; the last one to leave puts the
 * listeners back on the server, so that none piles up across the restarts of an instance on a
 * long-lived server.
 */
interface Front {
  /** The latest takeover first. */
  readonly takeovers: Takeover[]
  /** The listeners taken off the server, in the order they were there. */
  readonly requests: RequestListener[]
  readonly upgrades: UpgradeListener[]
  readonly onRequest: RequestListener
  readonly onUpgrade: UpgradeListener
}

const fronts = new WeakMap<object, Front>()

/**
 * Upgrades no takeover answered on their way through a front: the listener that routes a
 * server's upgrades to the stand-in of the Fastify instance that mounts their path
 * (websocket-registrations.ts) emits them again there, where a front stands too for those
 * `app.injectWS` emits there alone. Not judged twice.
 */
const passed = new WeakSet<object>()

/**
 * Listeners that must see every request and upgrade of their server, those a takeover answers
 * too: the connection tracking of each mount point on it (idle-connections.ts,
 * http2-sessions.ts). Never held by a front, whichever mount point's takeover makes it: held,
 * another mount point's tracking would miss the requests that one answers, and could not be
 * taken off the server when its own instance closes.
 */
const everywhere = new WeakSet<object>()

/** Marks `listener` as one that sees every request or upgrade of its server (see `everywhere`). */
export function seesEverything<L extends object>(listener: L): L {
  everywhere.add(listener)
  return listener
}

/**
 * The server's request listeners as they stand with no takeover in front of them (those the
 * front holds in its place), but those that see every request (`seesEverything`).
 */
export function standingRequestListeners(server: NetServer): RequestListener[] {
  const front = fronts.get(server)
  const listening = server.listeners('request') as RequestListener[]
  const standing = front
    ? listening.flatMap((listener) => (listener === front.onRequest ? front.requests : [listener]))
    : listening
  return standing.filter((listener) => !everywhere.has(listener))
}

/**
 * Puts `takeover` in front of the server's listeners: those of `request` that `takesRequest`
 * picks, and those of `upgrade` that `takesUpgrade` picks, but none that sees everything
 * (`seesEverything`), come off the server (or stay held, by another takeover's front). Returns its leave: called once its mount point has closed (again
 * is harmless).
 */
export function takeOver(
  server: NetServer,
  takeover: Takeover,
  takesRequest: (listener: RequestListener) => boolean,
  takesUpgrade: (listener: UpgradeListener) => boolean,
): () => void {
  const front = fronts.get(server) ?? open(server)
  front.takeovers.unshift(takeover)
  hold(server, 'request', front.requests, front.onRequest, takesRequest)
  hold(server, 'upgrade', front.upgrades, front.onUpgrade, takesUpgrade)
  return () => leave(server, front, takeover)
}

/**
 * Takes `listener` off the server's `event`, or out of the front that holds it in its place: a
 * listener taken off while held must not come back when the front goes.
 */
export function takeOff(server: EventEmitter, event: string, listener: unknown): void {
  const front = fronts.get(server)
  const held: unknown[] | undefined =
    event === 'request' ? front?.requests : event === 'upgrade' ? front?.upgrades : undefined
  const at = held ? held.indexOf(listener) : -1
  if (held && at !== -1) held.splice(at, 1)
  else server.off(event, listener as (...args: unknown[]) => void)
}

function open(server: NetServer): Front {
  const takeovers: Takeover[] = []
  const requests: RequestListener[] = []
  const upgrades: UpgradeListener[] = []
  const front: Front = {
    takeovers,
    requests,
    upgrades,
    onRequest(req, res) {
      for (const takeover of takeovers) if (takeover.request(req, res)) return
      for (const listener of requests) listener.call(server, req, res)
    },
    onUpgrade(req, socket, head) {
      if (!passed.has(req)) {
        for (const takeover of takeovers) if (takeover.upgrade(req, socket, head)) return
        passed.add(req)
      }
      for (const listener of upgrades) listener.call(server, req, socket, head)
    },
  }
  fronts.set(server, front)
  server.on('request', front.onRequest)
  server.on('upgrade', front.onUpgrade)
  return front
}

/** Moves the listeners of `event` that `takes` picks from the server into `held`. */
function hold<L>(server: NetServer, event: string, held: L[], own: L, takes: (listener: L) => boolean): void {
  for (const listener of server.listeners(event) as L[]) {
    if (listener === own || everywhere.has(listener as object) || !takes(listener)) continue
    server.off(event, listener as (...args: unknown[]) => void)
    held.push(listener)
  }
}

function leave(server: NetServer, front: Front, takeover: Takeover): void {
  const at = front.takeovers.indexOf(takeover)
  if (at === -1) return
  front.takeovers.splice(at, 1)
  if (front.takeovers.length > 0 || fronts.get(server) !== front) return
  fronts.delete(server)
  server.off('request', front.onRequest)
  server.off('upgrade', front.onUpgrade)
  for (const listener of front.requests.splice(0)) server.on('request', listener)
  for (const listener of front.upgrades.splice(0)) server.on('upgrade', listener)
}
