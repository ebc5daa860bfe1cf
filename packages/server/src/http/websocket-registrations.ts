import type { IncomingMessage } from 'node:http'
import { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { ParleyOptionError } from '../options.js'
import { prefixedBase } from '../transports/registry.js'
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
 * upgrade's path. A later registration in the same instance gets a stand-in that never emits.
 */
interface Instance {
  /** Where this Fastify instance's first registration of @fastify/websocket listens. */
  readonly source: Server
  /**
   * The mount bases of its mount points (see `mountBase`), each after its context's prefix, with
   * how many claim it.
   */
  readonly bases: Map<string, number>
  /** Its router matches paths whatever their letter case (Fastify's `caseSensitive: false`). */
  readonly anyCase: boolean
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
  /** Gives the path back, at the instance's close or a failed registration; once is enough. */
  release(): void
}

/**
 * Claims the upgrades of `server` at `base` (`mountBase` of the option `path`) under the Fastify
 * context's `prefix` for the instance whose router is `routing` (`anyCase`: that router ignores
 * letter case, as its upgrades are then matched here too): upgrades are routed by the URL as the
 * client sends it, the prefix included. Throws a `ParleyOptionError` (before anything is
 * touched) when another Fastify instance on the same server mounts Parley at that URL path
 * already: only one of them could take its upgrades.
 */
export function claimUpgrades(
  server: object,
  routing: object,
  prefix: string,
  base: string,
  path: string,
  anyCase = false,
): UpgradeClaim {
  const upgrades = servers.get(server) ?? listen(server)
  // As Fastify joins them, or no upgrade's path would lie under the base.
  const full = prefixedBase(prefix, base)
  for (const [other, instance] of upgrades.instances) {
    if (other !== routing && sameBase(instance, full, anyCase)) {
      throw new ParleyOptionError(
        'path',
        `is "${path}"${prefix === '' ? '' : ` (under "${prefix}")`}, but another Fastify instance on the same HTTP server mounts Parley at that path already, and each WebSocket upgrade reaches one of them: give each instance's mount point a path of its own`,
      )
    }
  }
  const known = upgrades.instances.get(routing)
  const instance = known ?? { source: new Server(), bases: new Map<string, number>(), anyCase }
  if (!known) upgrades.instances.set(routing, instance)
  instance.bases.set(full, (instance.bases.get(full) ?? 0) + 1)
  let released = false
  return {
    source: known ? new Server() : instance.source,
    shared: known !== undefined,
    release() {
      if (released) return
      released = true
      const count = (instance.bases.get(full) ?? 1) - 1
      if (count > 0) instance.bases.set(full, count)
      else instance.bases.delete(full)
      if (instance.bases.size > 0) return
      upgrades.instances.delete(routing)
      if (upgrades.instances.size > 0) return
      servers.delete(server)
      // Held by a closing mount point's takeover, it must not come back when that one leaves.
      takeOff(server as Server, 'upgrade', upgrades.listener)
    },
  }
}

function listen(server: object): Upgrades {
  const instances = new Map<object, Instance>()
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const instance = instanceAt(instances, req.url ?? '/')
    instance?.source.emit('upgrade', req, socket, head)
  }
  const upgrades = { instances, listener }
  servers.set(server, upgrades)
  ;(server as Server).on('upgrade', listener)
  return upgrades
}

/**
 * The instance whose mount base is the longest one `url`'s path lies under; with none, the first
 * instance to claim the server, whose router answers the upgrade (its 404, or a WebSocket route
 * of the application's in a context where Parley's registration is seen).
 */
function instanceAt(instances: Map<object, Instance>, url: string): Instance | undefined {
  const query = url.indexOf('?')
  // As the router reads it when told to ignore duplicate slashes: a longer match never hurts.
  const path = (query === -1 ? url : url.slice(0, query)).replace(/\/{2,}/g, '/')
  // With `caseSensitive: false`, Fastify's router reads a path in lower case, and its routes.
  const lower = path.toLowerCase()
  let found: Instance | undefined
  let longest = -1
  for (const instance of instances.values()) {
    for (const base of instance.bases.keys()) {
      if (
        base.length > longest &&
        under(instance.anyCase ? lower : path, instance.anyCase ? base.toLowerCase() : base)
      ) {
        found = instance
        longest = base.length
      }
    }
  }
  return found ?? instances.values().next().value
}

function under(path: string, base: string): boolean {
  return path === base || path.startsWith(`${base}/`)
}

/** Whether an upgrade at `base` could reach `instance` as well as the mount point claiming it. */
function sameBase(instance: Instance, base: string, anyCase: boolean): boolean {
  if (instance.bases.has(base)) return true
  if (!anyCase && !instance.anyCase) return false
  const lower = base.toLowerCase()
  for (const other of instance.bases.keys()) if (other.toLowerCase() === lower) return true
  return false
}
