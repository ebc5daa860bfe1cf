import type { IncomingMessage } from 'node:http'
import { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Ending } from '../ended-sessions.js'
import { ParleyOptionError } from '../options.js'
import { prefixedBase } from '../transports/registry.js'
import { DEFAULT_READING, originForm, queryStart, type RouterReading, routedPath } from './request-target.js'
import { routeMatch, routeShape } from './route-match.js'
import { takeOff } from './takeovers.js'

/**
 * The upgrades of one HTTP server, for the mount points of Parley on it that registered
 * @fastify/websocket themselves (the application registered none in a context above them).
 *
 * @fastify/websocket listens for every upgrade of the server it is given and sends each through
 * its Fastify instance's router. Within one instance that router reaches every mount point's
 * WebSocket route, whose own registration takes the WebSocket: one listener is enough, and a
 * second would find each upgrade taken by the first (@fastify/websocket then logs `websocket
 * upgrade failed` at warn for every WebSocket). But several Fastify instances can share one HTTP
 * server (`serverFactory`), and one instance's router knows nothing of another's routes: the
 * first instance's listener would answer the others' upgrades with its 404.
 *
 * So no registration listens on the server itself. Each Fastify instance's first registration
 * listens on a stand-in server of its own (a `Server` that never listens, as an emitter), and
 * one listener here sends each upgrade to the stand-in of the instance that mounts Parley at the
 * upgrade's path, as that instance's router reads it (see `instanceAt`). A later registration in
 * the same instance gets a stand-in that never emits.
 */
interface Instance {
  /** Where this Fastify instance's first registration of @fastify/websocket listens. */
  readonly source: Server
  /**
   * The mount bases of its mount points (see `mountBase`), each after its context's prefix, with
   * how many claim it.
   */
  readonly bases: Map<string, number>
  /** How its router reads a target's path, which its upgrades are matched by. */
  readonly router: Readonly<RouterReading>
  /**
   * Its close has begun: another instance may mount Parley at its paths (a restart in the same
   * process while this one drains), and takes their upgrades from then on (see `instanceAt`).
   */
  closing: boolean
  /**
   * Its Fastify instance is ready (its `ready()` resolved): every plugin of it registered, every
   * onReady hook run. Only then is it the successor of the closing instances at its paths, and
   * does it take upgrades (see `UpgradeClaim.booted`).
   */
  booted: boolean
  /**
   * Parley's onReady hook ran in its Fastify instance, whose boot has yet to settle (see
   * `UpgradeClaim.booting`): another instance may not mount Parley at its paths meanwhile.
   */
  readying: boolean
  /**
   * How each of its mount points tells its own sessions (see `UpgradeClaim.answering`), by mount
   * base as in `bases`.
   */
  readonly holders: Map<string, Set<Holder>>
  /**
   * Its mount bases (as in `bases`) that an instance registered since claimed, with the claims
   * that did and have not given the path back: the server's requests there may go to that one
   * from then on. Not before that one is ready (see `UpgradeClaim.booted`), and not once it has
   * closed in its turn, or its registration failed (see `UpgradeClaim.release`): the server's
   * handler may still give that one the path's requests,
   * and a closed Fastify answers them its bare 503, where this one's coded answers tell the
   * client what to do.
   */
  readonly succeeded: Map<string, Set<object>>
}

/** How a mount point tells its sessions (see `UpgradeClaim.answering`). */
interface Holder {
  /** Whether `sid` names a session of its: live, being taken over, handed off, ended lately. */
  readonly holds: (sid: string) => boolean
  /**
   * Whether `sid`'s session is live there, not frozen for its handoff, under the route parameters
   * `params` (not one of another tenant's).
   */
  readonly live: (sid: string, params: Record<string, string>) => boolean
  /** How `sid`'s session ended there lately, if it did (see `EndedSessions`). */
  readonly ended: (sid: string) => Ending | undefined
}

interface Upgrades {
  /** By the Fastify instance's `routing` (one function per instance, which its contexts share). */
  readonly instances: Map<object, Instance>
  readonly listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}

const servers = new WeakMap<object, Upgrades>()

/** A mount point's claim on its server's upgrades at its path. */
export interface UpgradeClaim {
  /** Where its registration of @fastify/websocket listens (its `server` option). */
  readonly source: Server
  /** Another mount point of the same Fastify instance registered @fastify/websocket first. */
  readonly shared: boolean
  /**
   * Its Fastify instance has begun to close: from now on another instance may mount Parley at
   * its path, and takes the upgrades there.
   */
  closing(): void
  /**
   * Whether its Fastify instance booted (see `booted`): one that never did (its boot failed, or
   * never ran) served nobody at the path, and leaves the path's requests to the instances there
   * at its close, as if it had never come.
   */
  readonly served: boolean
  /**
   * Parley's onReady hook runs: the instance's boot is under way, and from now on no other
   * instance mounts Parley at the path (an open one there not ready when this one registered may
   * have become ready since: this boot then fails with the `ParleyOptionError` a second
   * registration gets, and the claim is given back).
   */
  booting(): void
  /**
   * Its Fastify instance is ready: from now on it succeeds the closing instances at its path, and
   * takes the path's upgrades. Not before: a plugin of the application's registered after Parley,
   * or an onReady hook that runs after Parley's, may still fail the instance's boot, and an
   * instance that never booted, closed or not, serves nobody; the closing one goes on answering
   * the path's requests and upgrades as if it had never come.
   */
  booted(): void
  /**
   * Its Fastify instance's boot failed after Parley's onReady hook ran: the path is given back
   * (see `release`), as the instance's close would, which nothing makes the application call.
   */
  bootFailed(): void
  /**
   * Whether this one's close has reached Parley (see `closing`) and an instance registered on the
   * server since mounts Parley at its path (open, or closing in its turn): the new clients there
   * are that one's, and this closing mount point answers its own sessions' requests itself,
   * whatever Fastify lets through. Not before (a preClose hook of the application's ahead of
   * Parley's still runs, and a successor booted beside this one waits for its turn): this one
   * still holds the path, and answers its new clients itself. Not once every such instance has
   * closed: this one is the last at its path then, and answers its requests as if none had come.
   */
  succeeded(): boolean
  /**
   * Tells the claim how its mount point knows its own sessions (see `heldElsewhere`), and those
   * live there (see `liveBefore`).
   */
  answering(holder: Holder): void
  /**
   * Whether another instance mounting Parley at its path holds `sid`: an instance restarted at
   * the path and closing in its turn while this one still closes leaves that one's sessions to it.
   */
  heldElsewhere(sid: string): boolean
  /**
   * Whether an open instance on the server mounts Parley where `url` goes, more specifically than
   * this one (`/acme` where this one is under `/:tenant`), or as specifically (at the same path:
   * the instance this one was to succeed, with `successor`, still open as this one closes; or
   * this one's successor, once this one's close reaches Parley, not while a preClose hook of the
   * application's ahead of Parley's runs: this one holds the path until then): the URL is that
   * one's, as a router holding both routes would read it, or as the path's open instance serves
   * it, and this one, closing, leaves it alone.
   */
  outranked(url: string): boolean
  /**
   * Whether a closing instance mounting Parley at its path, which this one succeeded, holds
   * `sid`'s session live under the route parameters `params`: a resume of it is that one's to
   * answer (it refuses resumes while it closes), not a new session here. Not a session of
   * another tenant's (other parameters): that resume gets a new session here.
   */
  liveBefore(sid: string, params: Record<string, string>): boolean
  /**
   * How `sid`'s session ended lately on a closing instance mounting Parley at its path, which this
   * one succeeded: a resume of it is answered with that session's CLOSE, as that one answered it
   * while open, not with a new session here.
   */
  endedBefore(sid: string): Ending | undefined
  /**
   * Gives the path back, at the instance's close or a failed registration: the closing instances
   * it succeeded are then as if it had never come; once is enough.
   */
  release(): void
}

/**
 * Claims the upgrades of `server` at `base` (`mountBase` of the option `path`) under the Fastify
 * context's `prefix` for the instance whose router is `routing` and reads paths as `router` says:
 * upgrades are routed by the URL as that router reads it, the prefix included. Throws a
 * `ParleyOptionError` (before anything is touched) when another Fastify instance on the same
 * server mounts Parley at that URL path already, ready or booting (see `secondAtPath`): only one
 * of them could take its upgrades. Not when that instance is closing: the new one is its
 * successor (an instance restarted on a long-lived server), and takes the new upgrades once
 * ready while the old one's sessions end. Nor when its boot has yet to reach Parley's onReady
 * hook (or failed before): the new one's boot checks again (see `UpgradeClaim.booting`). With
 * `successor` (the option), one open instance there is let by: the new one waits beside it,
 * behind it for the path's upgrades (see `instanceAt`), and succeeds it once it begins to close.
 */
export function claimUpgrades(
  server: object,
  routing: object,
  prefix: string,
  base: string,
  path: string,
  router: Readonly<RouterReading> = DEFAULT_READING,
  successor = false,
): UpgradeClaim {
  const upgrades = servers.get(server) ?? listen(server)
  // As Fastify joins them, or no upgrade's path would lie under the base.
  const full = prefixedBase(prefix, base)
  const anyCase = router.rules.anyCase
  const refuseSecond = () => {
    const error = secondAtPath(upgrades, routing, full, anyCase, prefix, path, successor)
    if (error) throw error
  }
  refuseSecond()
  // Closing ones (the check above let them by): this one is their successor there, once booted.
  const claim = {}
  const succeeding: Set<object>[] = []
  for (const [other, instance] of upgrades.instances) {
    if (other === routing) continue
    for (const written of instance.bases.keys()) {
      if (!alike(instance, written, full, anyCase)) continue
      const claims = instance.succeeded.get(written) ?? new Set<object>()
      instance.succeeded.set(written, claims)
      succeeding.push(claims)
    }
  }
  const known = upgrades.instances.get(routing)
  const instance = known ?? {
    source: new Server(),
    bases: new Map<string, number>(),
    router,
    closing: false,
    booted: false,
    readying: false,
    holders: new Map<string, Set<Holder>>(),
    succeeded: new Map<string, Set<object>>(),
  }
  if (!known) upgrades.instances.set(routing, instance)
  instance.bases.set(full, (instance.bases.get(full) ?? 0) + 1)
  let released = false
  let holder: Holder | undefined
  return {
    source: known ? new Server() : instance.source,
    shared: known !== undefined,
    closing() {
      instance.closing = true
    },
    get served() {
      return instance.booted
    },
    booting() {
      if (released) return
      try {
        refuseSecond()
      } catch (err) {
        release()
        throw err
      }
      instance.readying = true
    },
    booted() {
      if (released) return
      instance.booted = true
      instance.readying = false
      for (const claims of succeeding) claims.add(claim)
    },
    bootFailed() {
      instance.readying = false
      release()
    },
    succeeded() {
      // Not before its close reaches Parley (see `closing`): a successor booted beside it
      // waits until then, while this one holds the path and answers its new clients itself.
      return instance.closing && (instance.succeeded.get(full)?.size ?? 0) > 0
    },
    answering(given) {
      if (released) return
      holder = given
      const holders = instance.holders.get(full) ?? new Set()
      holders.add(holder)
      instance.holders.set(full, holders)
    },
    heldElsewhere(sid) {
      return heldAt(upgrades, routing, full, anyCase, (other) => other.holds(sid))
    },
    outranked(url) {
      const own = routeMatch(full, instance.router.rules).staticSegments
      // The instances claimed the server in this order: those after this one at its path are its
      // successors.
      let after = false
      for (const [other, each] of upgrades.instances) {
        if (other === routing) {
          after = true
          continue
        }
        // One not ready serves nobody: its boot may yet fail, or has.
        if (each.closing || !each.booted) continue
        const path = pathOf(url, each.router)
        if (path === undefined) continue
        // A successor takes the path only once this one's close reaches Parley (see `succeeded`).
        const equalOutranks = !after || instance.closing
        for (const written of each.bases.keys()) {
          const base = routeMatch(written, each.router.rules)
          const outranks = base.staticSegments > own || (base.staticSegments === own && equalOutranks)
          if (outranks && base.covers(path)) return true
        }
      }
      return false
    },
    liveBefore(sid, params) {
      return heldAt(upgrades, routing, full, anyCase, (other) => other.live(sid, params), true)
    },
    endedBefore(sid) {
      return foundAt(upgrades, routing, full, anyCase, (other) => other.ended(sid), true)
    },
    release,
  }

  /** Gives the path back (see `UpgradeClaim.release`); once is enough. */
  function release(): void {
    if (released) return
    released = true
    // An emptied set stays in its instance's map, read as none: it goes with that instance.
    for (const claims of succeeding) claims.delete(claim)
    if (holder) {
      const holders = instance.holders.get(full)
      holders?.delete(holder)
      if (holders?.size === 0) instance.holders.delete(full)
    }
    const count = (instance.bases.get(full) ?? 1) - 1
    if (count > 0) instance.bases.set(full, count)
    else instance.bases.delete(full)
    if (instance.bases.size > 0) return
    upgrades.instances.delete(routing)
    if (upgrades.instances.size > 0) return
    servers.delete(server)
    // Held by a closing mount point's takeover, it must not come back when that one leaves.
    takeOff(server as Server, 'upgrade', upgrades.listener)
  }
}

/**
 * The `ParleyOptionError` of a mount point at `full` (`path` under `prefix`) of the instance whose
 * router is `routing` when another instance on the server mounts Parley there, open and ready or
 * on its way to (its onReady hooks running): only one of them could take the path's upgrades.
 * Not one that has begun to close (the new one is its successor), nor one whose boot has yet to
 * reach Parley's onReady hook: the boot of a restart before this one may have failed, and left
 * it so for good (a plugin registered after Parley threw, with nothing to tell Parley, and an
 * application that goes on to the next restart without closing it). A `successor` lets one such
 * instance by, the one it waits to succeed: not two (one serving, and one waiting beside it
 * already), which would leave the path to whichever of them the application closes last.
 */
function secondAtPath(
  upgrades: Upgrades,
  routing: object,
  full: string,
  anyCase: boolean,
  prefix: string,
  path: string,
  successor: boolean,
): ParleyOptionError | undefined {
  let open = 0
  for (const [other, instance] of upgrades.instances) {
    if (other === routing || instance.closing || !(instance.booted || instance.readying)) continue
    if (sameBase(instance, full, anyCase)) open++
  }
  const where = `is "${path}"${prefix === '' ? '' : ` (under "${prefix}")`}`
  if (successor && open > 1) {
    return new ParleyOptionError(
      'path',
      `${where}, with successor: true, but two Fastify instances on the same HTTP server mount Parley at that path already, one serving it and one waiting to succeed it: close the one waiting, or begin the serving one's app.close() and let the waiting one take the path, before you boot another`,
    )
  }
  if (!successor && open > 0) {
    return new ParleyOptionError(
      'path',
      `${where}, but another Fastify instance on the same HTTP server mounts Parley at that path already, and each WebSocket upgrade reaches one of them: give each instance's mount point a path of its own, or, to restart it in this process, register the new one with successor: true (it boots beside the old one, and takes the path once the old one's app.close() begins)`,
    )
  }
  return undefined
}

/**
 * Whether a mount point at `full` of another instance than `routing`'s (a closing one alone, with
 * `closing`) has a session that `has` picks.
 */
function heldAt(
  upgrades: Upgrades,
  routing: object,
  full: string,
  anyCase: boolean,
  has: (holder: Holder) => boolean,
  closing = false,
): boolean {
  return foundAt(upgrades, routing, full, anyCase, (holder) => has(holder) || undefined, closing) === true
}

/**
 * What `pick` finds first at a mount point at `full` of another instance than `routing`'s (a
 * closing one alone, with `closing`).
 */
function foundAt<T>(
  upgrades: Upgrades,
  routing: object,
  full: string,
  anyCase: boolean,
  pick: (holder: Holder) => T | undefined,
  closing = false,
): T | undefined {
  for (const [other, each] of upgrades.instances) {
    if (other === routing || (closing && !each.closing)) continue
    for (const [base, holders] of each.holders) {
      if (!alike(each, base, full, anyCase)) continue
      for (const holder of holders) {
        const found = pick(holder)
        if (found !== undefined) return found
      }
    }
  }
  return undefined
}

function listen(server: object): Upgrades {
  const instances = new Map<object, Instance>()
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const instance = instanceAt(instances, req.url ?? '/')
    if (instance) instance.source.emit('upgrade', req, socket, head)
    // Only instances whose boot has yet to end, or failed, on the server: none serves anyone, and
    // the upgrade is refused as Node refuses one nobody listens for, as if they had never come.
    // The client tries again.
    else socket.destroy()
  }
  const upgrades = { instances, listener }
  servers.set(server, upgrades)
  ;(server as Server).on('upgrade', listener)
  return upgrades
}

/**
 * The instance whose router reads `url`'s path as the WebSocket route of one of its mount points
 * (of several, the one whose route a router holding both would take: a static segment before a
 * parameter); else the one whose mount base is the longest one that path lies under, as its router reads both;
 * with none, the first instance to claim the server (the first still open, else the newest
 * closing one), whose router answers the upgrade (its 404,
 * or a WebSocket route of the application's in a context where Parley's registration is seen).
 * Each instance reads the path by its own router's options, as Fastify would route it there: one
 * that ignores letter case reads `/B/ws` as `/b/ws`, where another reads it as written, and
 * `/b/ws/` is the route `/b/ws` only where trailing slashes are ignored. Only instances that are
 * ready (or were, before their close began) take upgrades: one whose boot is under way, or
 * failed, serves nobody; with no other, none (see `listen`). An instance still open
 * comes before a closing one at the same path: its successor, which takes the
 * new upgrades. Among
 * closing ones, the newest comes first: restarted twice while the first still closes, the second
 * closes in its turn, and is the one least far in its close (its route may still take the
 * upgrade, where the first one's Parley may have closed). Which closing one holds a session an
 * upgrade resumes, only its HELLO says: each closing one answers that HELLO alike.
 */
function instanceAt(instances: Map<object, Instance>, url: string): Instance | undefined {
  // In the order they claimed the server, the open ones first, then the closing ones, the last
  // to claim first; only those that booted: a successor takes the upgrades once ready, and one
  // whose boot failed (a plugin after Parley threw, or an onReady hook after Parley's) never
  // does, closed or not.
  const all = [...instances.values()].filter((each) => each.booted)
  const ordered = [...all.filter((each) => !each.closing), ...all.filter((each) => each.closing).reverse()]
  let found: Instance | undefined
  let longest = -1
  // The instance whose WebSocket route is the path's, the most specific first, as a router
  // prefers a static segment to a parameter (`/acme/parley/ws` is `/acme`'s, not `/:tenant`'s),
  // among the open ones first (see above).
  let route: Instance | undefined
  let specific = -1
  for (const instance of ordered) {
    if (route && instance.closing && !route.closing) break
    const path = pathOf(url, instance.router)
    // A path its router refuses (an escape that decodes to no UTF-8) is not its to answer.
    if (path === undefined) continue
    for (const written of instance.bases.keys()) {
      // As its router matches its routes: an escape in a prefix is not decoded there, and a
      // parameter of a prefix (`/:tenant`) is any segment.
      const ws = routeMatch(`${written}/ws`, instance.router.rules)
      if (ws.is(path)) {
        if (ws.staticSegments === Number.POSITIVE_INFINITY) return instance
        if (ws.staticSegments > specific) {
          route = instance
          specific = ws.staticSegments
        }
        continue
      }
      const base = routeMatch(written, instance.router.rules)
      if (base.length > longest && base.covers(path)) {
        found = instance
        longest = base.length
      }
    }
  }
  return route ?? found ?? ordered[0]
}

/**
 * The path of `url` (a request's target) as a router reading paths as `router` says reads it
 * (see `routedPath`): in origin form, cut at its query; undefined for one that router refuses.
 */
function pathOf(url: string, router: Readonly<RouterReading>): string | undefined {
  const target = originForm(url)
  const query = queryStart(target, router.semicolon)
  return routedPath(query < 0 ? target : target.slice(0, query), router.rules)
}

/** Whether an upgrade at `base` could reach `instance` as well as the mount point claiming it. */
function sameBase(instance: Instance, base: string, anyCase: boolean): boolean {
  if (instance.bases.has(base)) return true
  for (const other of instance.bases.keys()) if (alike(instance, other, base, anyCase)) return true
  return false
}

/**
 * Whether `instance`'s mount base `written` is `base` as the routers read them: but for the names
 * of parameters that fill a segment (`/:tenant/parley` is `/:org/parley`), and, where either
 * ignores case, for it.
 */
function alike(instance: Instance, written: string, base: string, anyCase: boolean): boolean {
  const [one, other] = [routeShape(written), routeShape(base)]
  if (one === other) return true
  if (!anyCase && !instance.router.rules.anyCase) return false
  return one.toLowerCase() === other.toLowerCase()
}
