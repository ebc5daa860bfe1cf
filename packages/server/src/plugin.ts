import type { AddressInfo } from 'node:net'
import websocket from '@fastify/websocket'
import { CloseReason, WS_SUBPROTOCOL } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Adapter } from './adapter/adapter.js'
import { adapterMember, closeAdapter } from './adapter/check.js'
import { logLine } from './burst-log.js'
import { CloseDeadline } from './close-deadline.js'
import { SEAL_WAIT_MS } from './drain.js'
import { bootOutcome, whenBootFails } from './http/boot-outcome.js'
import { ClosingAnswers, type EndpointAnswer } from './http/closing-answers.js'
import { ClosingForwards } from './http/closing-forwards.js'
import { atCloseStart, refusesWhileClosing, routedUrl } from './http/fastify-closing.js'
import { Http2Sessions } from './http/http2-sessions.js'
import { IdleConnections } from './http/idle-connections.js'
import { type ForwardAtClose, LastWordsAtClose, type UpgradeAtClose } from './http/last-words.js'
import { notFoundUnder } from './http/not-found.js'
import { checkRawOrigin, OriginRefusals } from './http/origin.js'
import { type RouterReading, routerReading, settleRouterReading } from './http/request-target.js'
import { routeShape } from './http/route-match.js'
import { parleyRoutes } from './http/routes.js'
import { bodyTooLarge, endsWherever, heardWhileDisabled } from './http/routing.js'
import { shareServer } from './http/server-sharers.js'
import { whenServerStops } from './http/server-stops.js'
import { type TakePost, UpstreamPosts } from './http/upstream-post.js'
import { VersionRefusals } from './http/version-refusals.js'
import { claimUpgrades, type UpgradeClaim } from './http/websocket-registrations.js'
import { createMetrics, type MadeMetrics, type Metrics, noMetrics } from './metrics.js'
import {
  defaults,
  ParleyOptionError,
  type ParleyServerOptions,
  type ResolvedOptions,
  resolveOptions,
} from './options.js'
import { checkPrefixEscapes } from './prefix-escapes.js'
import { checkRegisteredOnce } from './registered-once.js'
import { ParleyServer } from './server.js'
import { ClosingWebSockets } from './transports/closing-websockets.js'
import { mountBase, prefixedBase } from './transports/registry.js'

/**
 * The longest a closing server waits for the clients whose CLOSE waits for their next GET (a
 * polling client between two answers asks again within its usual turnaround; see
 * `ParleyServer.lastWordsTaken`), and, meanwhile, for WebSocket clients to answer its close
 * frames (one round trip).
 */
const LAST_WORDS_MS = 2000
/**
 * What Parley's preClose hook leaves unused of its own `pluginTimeout`: room for the work after
 * its last wait and for timers that fire late on a loaded machine, so that it ends before Fastify
 * gives up on it and closes the HTTP server under its last answers. The limit is this hook's
 * alone: avvio times each preClose hook apart, each with the whole `pluginTimeout`, and onClose
 * hooks not at all, so nothing here is kept for the hooks that run after it.
 */
const HOOK_MARGIN_MS = 1000

declare module 'fastify' {
  interface FastifyInstance {
    /** The Parley server: middleware, `connection` events, sockets. */
    parley: ParleyServer
  }
}

async function parley(app: FastifyInstance, rawOptions: ParleyServerOptions): Promise<void> {
  // Validate before touching the instance: a bad option leaves nothing half-registered.
  const options = resolveOptions(rawOptions)
  checkRegisteredOnce(app, options.path)
  checkPrefixEscapes(app.prefix, options.path)
  // With the application's own @fastify/websocket, compression is that registration's to set
  // (ws takes it once, for every route): Parley's option would be dropped without a word.
  if (options.perMessageDeflate && app.hasDecorator('websocketServer')) {
    throw new ParleyOptionError(
      'perMessageDeflate',
      "has no effect here: the application registered @fastify/websocket before Parley, and Parley uses that registration as it is; set perMessageDeflate in that registration's options",
    )
  }
  // Without the application's own @fastify/websocket, this mount point's upgrades are claimed on
  // the HTTP server now, so that another Fastify instance on it at the same path is refused
  // before anything is made (see claimUpgrades).
  // One reading of the router's options for all that reads a target here, settled once the
  // routes are in the router (see `settleRouterReading`).
  const reading = routerReading(app)
  const upgrades = app.hasDecorator('websocketServer')
    ? undefined
    : claimUpgrades(
        app.server,
        app.routing,
        app.prefix,
        mountBase(options.path),
        options.path,
        reading,
        options.successor,
      )
  let made: MadeMetrics | undefined
  // Fastify gives each preClose hook at most `pluginTimeout` ms (0: no bound).
  const hookLimit = app.initialConfig.pluginTimeout ?? 0
  let server: ParleyServer
  // What `mount` undoes of its work on the HTTP server if a later step of it throws, or the boot
  // fails after Parley's onReady hook.
  const undo: (() => void)[] = []
  // Whether the instance's boot reached Parley's onReady hook and has not failed since: only from
  // then on does it serve on the HTTP server (see `mount`).
  const boot: Boot = { reached: false, steps: [], closes: [] }
  try {
    if (options.metricsRegistry) {
      // Read at scrape time, by which point `server` is set.
      made = await createMetrics(options.metricsRegistry, {
        transports: () =>
          [...server.sockets.values()].map((socket) => socket.session.transport?.name ?? null),
        unknownSessions: () => server.unknownSessionCount,
      })
    }
    // Where the endpoints are under the context's prefix, its parameters' names aside: what a
    // multi-node adapter compares across nodes (see `LocalSockets.route`).
    const route = routeShape(prefixedBase(app.prefix, mountBase(options.path))) || '/'
    server = await startServer(
      app.log,
      options,
      route,
      reading.rules.anyCase,
      made?.metrics ?? noMetrics,
      hookLimit,
    )
    await mount(app, server, options, rawOptions, hookLimit, upgrades, reading, undo, boot)
  } catch (err) {
    // Refused (the metrics' names, the adapter, the handoff's timeout) or failed after (a route
    // of the application's where Parley's go): the registry is left as it was given, and the
    // path free, for a registration that corrects the options. An adapter accepted already is
    // closed by the onClose hook that `mount` adds before anything else, which the
    // application's close runs.
    made?.remove()
    upgrades?.release()
    for (const step of undo) step()
    throw err
  }
  // A successor of the instances closing at this path once the instance is ready: not at this
  // hook, which runs before those of the contexts registered after Parley's. A boot that fails
  // after it gives the path back at once (see `UpgradeClaim`), and takes Parley's listeners off
  // the server, and its share of it, as a failed registration does: the application need not
  // close the instance, and they would keep the upgrades nobody takes now from being refused, and
  // the instance closing before it from ending the server's connections. Not awaited: the boot
  // waits for this hook. Watched before `booting`, whose refusal (a second instance at the path,
  // ready meanwhile) fails the boot too: the listeners come off then as well.
  //
  // A boot that fails wherever it fails, before Parley's onReady hook too (a plugin registered
  // after Parley's throws, which Fastify tells Parley nothing of), also closes what Parley opened,
  // as the instance's close would: Fastify closes nothing of an instance whose boot failed, and
  // one the application does not close would keep the adapter's connections and timers (a Redis
  // subscriber, its heartbeat) for good, and with them the process. Once: a close of the instance
  // after it closes nothing again.
  let bootFailed = false
  const failed = () => {
    if (bootFailed) return
    bootFailed = true
    boot.reached = false
    upgrades?.bootFailed()
    for (const step of undo) step()
    void closeAfterFailedBoot(boot, app.log)
  }
  whenBootFails(app, failed)
  app.addHook('onReady', async () => {
    void bootOutcome(app).then(() => upgrades?.booted(), failed)
    upgrades?.booting()
    boot.reached = true
    for (const step of boot.steps) step()
  })
  if (upgrades) atClose(app, boot, async () => upgrades.release())
  // Left in the registry for a last scrape, and taken over by the next server made with it.
  if (made) atClose(app, boot, async () => made.retire())
}

/**
 * How far the boot of the instance Parley is registered in has come: whether it reached Parley's
 * onReady hook (and has not failed since), and what is done then; and Parley's onClose hooks,
 * for a boot that fails (see `atClose`).
 */
interface Boot {
  reached: boolean
  readonly steps: (() => void)[]
  readonly closes: (() => Promise<void>)[]
}

/**
 * `close` as an onClose hook of `app`, and among what a failed boot closes (see `parley`): run
 * once, by whichever comes first.
 */
function atClose(app: FastifyInstance, boot: Boot, close: () => Promise<void>): void {
  let closing: Promise<void> | undefined
  const once = () => {
    closing ??= close()
    return closing
  }
  app.addHook('onClose', once)
  boot.closes.push(once)
}

/**
 * Parley's onClose hooks, run for a boot that failed, in the order the instance's close runs them
 * (the last added first). One that throws does not stop those after it, and is logged.
 */
async function closeAfterFailedBoot(boot: Boot, log: FastifyBaseLogger): Promise<void> {
  for (const close of [...boot.closes].reverse()) {
    try {
      await close()
    } catch (err) {
      logLine(log, 'warn', { err }, 'parley: a close after a failed boot failed')
    }
  }
}

/** `server` at work in `app`: its decorator, its hooks at close, its routes and its 404s. */
async function mount(
  app: FastifyInstance,
  server: ParleyServer,
  options: ResolvedOptions,
  rawOptions: ParleyServerOptions,
  hookLimit: number,
  upgrades: UpgradeClaim | undefined,
  reading: RouterReading,
  undo: (() => void)[],
  boot: Boot,
): Promise<void> {
  // Its own logs of refused origins and versions: the routes' close with the server, before the
  // last answers.
  const originRefusals = new OriginRefusals(app.log)
  const versionRefusals = new VersionRefusals(app.log)
  // First of all: whatever throws after it (a piece made below, a route of the application's
  // where Parley's go), the application's close closes the server and the adapter it opened.
  atClose(app, boot, async () => {
    server.close()
    server.forgetLastWords()
    originRefusals.close()
    versionRefusals.close()
    // Its timers and connections (a multi-node adapter's subscriber) go with the server; an
    // adapter closed already by the application ignores the second call.
    try {
      await server.adapter.close?.()
    } catch (err) {
      logLine(app.log, 'warn', { err }, 'parley: the adapter did not close cleanly')
    }
  })
  app.decorate('parley', server)

  const idle = new IdleConnections(app.server)
  const http2Sessions = new Http2Sessions(app.server)
  // Another mount point on the same HTTP server may outlive this one: of this instance, its close
  // hook after this one's, or of another instance (serverFactory). Only once its instance's boot
  // reached Parley: one whose boot failed before (a plugin registered after Parley threw), which
  // Parley never hears of, serves nobody, and the last instance closing ends the server's
  // connections as if it had never come; one still booting then takes fresh tracking of them
  // when its boot comes this far.
  const leaveServer = shareServer(app.server, () => boot.reached)
  boot.steps.push(
    () => idle.booting(),
    () => http2Sessions.booting(),
  )
  // Also where the preClose hook below never ran (the registration failed after this point).
  // Their listeners come off the server once the instance has closed, the last one's too: it
  // ended the server's connections at its close (below) and would go on refusing every new one,
  // those of an instance registered on the server anew (serverFactory) included. By then the
  // server's close, where Fastify listens itself, is over (its hook runs before this one).
  atClose(app, boot, async () => {
    leaveServer()
    idle.detach()
    http2Sessions.detach()
  })
  // Where the registration fails after this point and the application never closes the
  // instance: counted on the server, it would keep the closing instance before it (or a sibling
  // mount point) from ending the server's connections at its close.
  undo.push(() => {
    leaveServer()
    idle.withdraw()
    http2Sessions.withdraw()
  })
  // Made before any request listener of Parley's own but idle's and http2Sessions': it finds
  // Fastify's.
  const closingAnswers = new ClosingAnswers({
    // The URLs of the routes, which the requests it judges come with: under the context's prefix.
    base: prefixedBase(app.prefix, mountBase(options.path)),
    transports: options.transports,
    originOf: (request) => checkRawOrigin(request, options.allowedOrigins, originRefusals),
    maxPayload: options.maxPayload,
    tooLarge: (request) => bodyTooLarge(request.headers, options.maxPayload),
    heardWhileDisabled: (request, held) => heardWhileDisabled(request.method, request.headers, held),
    goodbyeOn: (request, standing) => endsWherever(request.headers, () => standing === 'left'),
    // Parley's own registration of @fastify/websocket, or the application's: read at close.
    upgradeSettings: () => app.websocketServer.options,
    router: reading,
    paramsOf: (sid) => server.paramsOf(sid),
    standing: (sid, kind) => {
      const session = server.sessionFor(sid)
      // Ended, its ACK and CLOSE waiting for the next GET on this transport: a refusal of a POST
      // sent meanwhile would fail the client's transport before it reads them, and it would send
      // again, to the next server, the events that ACK covers. Unread, the POST's own events stay
      // unacknowledged: they go to the next server. Not a session handed off and taken over
      // elsewhere, whose CLOSE 'server handoff' waits here: its client may have resumed there
      // already, and would take a 204 for delivery (the node holding the session would find a
      // gap). The route sends such a POST on to that node; here it gets the coded 503, and its
      // client resumes where the session is.
      if (!session) return server.endedLingering(sid, kind) ? 'frozen' : undefined
      if (session.state === 'frozen') return 'frozen'
      const attached = session.transport?.name === kind
      // A session finishing its middleware's events before it ends takes no events any more (see
      // `ParleyServer.finishEvents`), but hears its transport's POSTs as the route does (its
      // client's goodbye, say). A POST of another transport is not refused: that would fail its
      // client's transport before the CLOSE 'server shutdown' its next GET gets.
      if (server.finishing(sid)) return attached ? 'attached' : 'frozen'
      return attached ? 'attached' : 'left'
    },
  })
  // A body that stops arriving is given up after the silence that ends a transport after a PING.
  const posts = new UpstreamPosts({
    maxPayload: options.maxPayload,
    stallMs: options.pingTimeout,
    countSizes: () => server.metrics !== noMetrics,
  })
  const closingPost: TakePost = ({ sid, kind, headers, goodbyeOn }, body, answered) =>
    goodbyeOn
      ? posts.takeGoodbyeOn(
          headers,
          () => posts.bodies.read(body, answered),
          (packets) => server.relayedGoodbye(sid, packets),
        )
      : posts.takeFor(server.sessionFor(sid), kind, headers, body, answered)
  // What sending one of those answers does besides, as the routes do with theirs.
  const sent = ({ refusedOrigin, refusedVersion, endsSession }: EndpointAnswer) => {
    if (refusedOrigin) originRefusals.record(refusedOrigin)
    if (refusedVersion) versionRefusals.record(refusedVersion)
    // Judged in the same turn: the session is still the one the answer was judged on.
    if (endsSession !== undefined) server.sessionFor(endsSession)?.end(CloseReason.PAYLOAD_TOO_LARGE)
  }
  // The routes own the forwarder and the WebSocket handshakes: they hand them over once
  // registered (see `forwardingAtClose`, `upgradingAtClose`).
  let forwardAtClose: ForwardAtClose | undefined
  let upgradeAtClose: UpgradeAtClose | undefined
  // Another instance at this path closing beside this one leaves its sessions' requests to it,
  // and one that succeeded this one leaves it the resumes of those still live here.
  if (upgrades) {
    upgrades.answering({
      holds: (sid) => server.holds(sid),
      live: (sid, params) => server.holdsLive(sid, params),
      ended: (sid) => server.endedHere(sid),
    })
    server.succeeding(
      (sid, params) => upgrades.liveBefore(sid, params),
      (sid) => upgrades.endedBefore(sid),
    )
  }
  const lastWords = new LastWordsAtClose({
    server: app.server,
    injected: upgrades?.source,
    answers: closingAnswers,
    take: (sid, kind) => server.takeLingering(sid, kind)?.http,
    attached: (sid, kind) => server.attachedHttp(sid, kind),
    post: closingPost,
    forward: async (req, res, request, unsent) =>
      forwardAtClose ? forwardAtClose(req, res, request, unsent) : unsent,
    upgrade: (req, socket, head, params) => upgradeAtClose?.(req, socket, head, params) ?? false,
    finishing: (sid) => server.finishing(sid),
    log: app.log,
    fastifyRefuses: refusesWhileClosing(app),
    urlOf: routedUrl(app),
    sent,
    succeeded: () => upgrades?.succeeded() ?? false,
    holds: (sid) => server.holds(sid),
    heldElsewhere: (sid) => upgrades?.heldElsewhere(sid) ?? false,
    outranked: (url) => upgrades?.outranked(url) ?? false,
  })
  // Its answers stay on the server until the instance has closed: Fastify's bare 503 would
  // answer the requests that come meanwhile (on a connection kept alive, an HTTP/2 session).
  /** Stops the watch for a close that skipped Parley's preClose hook (see below). */
  let unwatch = () => {}
  atClose(app, boot, async () => {
    unwatch()
    lastWords.release()
  })
  // A new session is refused from now on, whatever its transport (see `closeBegins`): over SSE
  // and polling the answers at close refuse its handshake, over WebSocket its HELLO. An instance
  // whose boot failed served nobody at the path: the instances there answer its requests, not
  // its last words (see `UpgradeClaim.served`).
  const answerAtClose = () => {
    server.closeBegins()
    if (upgrades?.served !== false) lastWords.takeOver()
  }
  // From the first moment of the close (see `atCloseStart`), not from Parley's preClose hook
  // alone: Fastify runs a preClose hook the application added ahead of Parley's first, and for as
  // long as that one ran, Fastify's bare 503 answered the endpoints, a live session's GETs and
  // POSTs (its client's goodbye among them) included. Given once the boot reaches Parley's onReady
  // hook, after Fastify has given avvio its own part of the close.
  boot.steps.push(() => {
    atCloseStart(app, () => {
      answerAtClose()
      // Where such a hook throws or outlasts pluginTimeout, Fastify skips Parley's and closes the
      // HTTP server, which waits for the polls and streams served meanwhile: the sessions end
      // then, as Parley's onClose hook would end them once that close is over.
      unwatch = whenServerStops(app.server, () => {
        server.close()
        lastWords.shutDown()
      })
    })
  })
  const closingWebSockets = new ClosingWebSockets()
  const closingForwards = new ClosingForwards()
  // Added before @fastify/websocket's own preClose, so that WebSocket clients get their CLOSE
  // packet before the socket closes under them; SSE streams and held polls end here too, which
  // lets the HTTP server close. The drain (handoff to other nodes) comes first: until it is
  // over, the transports must stay open to carry each session's CLOSE 'server handoff'.
  app.addHook('preClose', async () => {
    // Within Fastify's bound on this hook (its own `pluginTimeout`), with a margin to end in.
    const deadline = new CloseDeadline(hookLimit, HOOK_MARGIN_MS)
    // From now on an instance restarted on this HTTP server may mount Parley at this path, and
    // take its new clients while this one's sessions end (see claimUpgrades).
    upgrades?.closing()
    unwatch()
    // Done at the close's first moment already where Fastify let Parley hear of it (see above).
    answerAtClose()
    await server.drain()
    // Events the sessions still here acknowledged go through their middleware to the handlers
    // before the sessions end: the clients forgot them at the ACK. Within the drain's bound,
    // and within Fastify's, with the last words' wait still to come after it.
    const handoffTimeout = options.handoff ? options.handoff.timeout : defaults.handoff.timeout
    await server.finishEvents(Math.min(handoffTimeout, deadline.left() - LAST_WORDS_MS))
    server.close()
    // Fastify's bare 503 has no code a client reads across origins: Parley's own from now on
    // (from the takeover already, when Fastify refuses every request while it closes).
    lastWords.shutDown()
    // WebSocket clients answer the close frames meanwhile, and the requests forwarded to other
    // nodes end; one that has not by then is cut: the HTTP server's close would wait for it
    // (see ClosingWebSockets, ClosingForwards). A request or a WebSocket's HELLO still looking
    // its owner up is waited for as long as its lookup lasts (it bounds itself), within
    // Fastify's bound, then answered.
    const limit = Math.min(LAST_WORDS_MS, deadline.left())
    await Promise.all([
      server.lastWordsTaken(limit),
      closingWebSockets.closeAll(limit, deadline.left()),
      closingForwards.closeAll(limit, deadline.left()),
    ])
    server.forgetLastWords()
    // The connections are the server's: while another instance serves on it, they stay, and
    // that instance's own listeners see to them.
    if (!leaveServer()) {
      idle.detach()
      http2Sessions.detach()
      return
    }
    idle.startClosing()
    http2Sessions.startClosing()
  })
  // Other nodes forward requests for this node's sessions to the address it listens on.
  app.addHook('onListen', (done) => {
    const url = listenUrl(app.server.address())
    if (url) server.listening(url)
    done()
  })

  const ownsWebSocketPlugin = upgrades !== undefined
  if (ownsWebSocketPlugin) {
    // Another mount point of this Fastify instance registered it already: that registration's
    // listener takes this one's upgrades too (see claimUpgrades). Said once here, rather than at
    // every WebSocket.
    if (upgrades.shared)
      app.log.warn(
        "parley: another mount point on this server registered @fastify/websocket too; its listener routes this one's WebSocket upgrades: register @fastify/websocket once, in the application's context, before the mount points",
      )
    await app.register(websocket, {
      options: {
        server: upgrades.source,
        maxPayload: options.maxPayload,
        perMessageDeflate: options.perMessageDeflate,
        // Select Parley's subprotocol when offered; otherwise do what ws does by default, so
        // the application's other WebSocket routes are not affected.
        handleProtocols: (protocols: Set<string>) =>
          protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : (protocols.values().next().value ?? false),
      },
      // ws closes the socket itself after a protocol error (1009 for a too large message);
      // the default handler would destroy it before the close frame leaves.
      errorHandler: (error, _socket, request) => request.log.debug({ err: error }, 'parley: websocket error'),
    })
  } else {
    app.log.debug("parley: using the application's @fastify/websocket registration")
  }

  // The routes live in a context of their own: its log level keeps their request lines quiet.
  await app.register(parleyRoutes, {
    server,
    options,
    serveClientAsked: rawOptions.serveClient === true,
    ownsWebSocketPlugin,
    closingWebSockets,
    closingForwards,
    closingAnswers,
    closingSent: sent,
    posts,
    closingPost,
    forwardingAtClose: (forward: ForwardAtClose) => {
      forwardAtClose = forward
    },
    upgradingAtClose: (upgrade: UpgradeAtClose) => {
      upgradeAtClose = upgrade
    },
    logLevel: options.logLevel,
  })
  settleRouterReading(app, `${prefixedBase(app.prefix, mountBase(options.path))}/ws`, reading)
  // In the application's context, not the routes': its 404s keep the application's log level.
  await notFoundUnder(app, mountBase(options.path))
}

/**
 * The server, its adapter made and checked; refused, nothing of it is left open. An adapter
 * the check took is closed when a later step throws (the handoff's bound, the rest of the
 * server's making): what it opened (a connection to its store) would otherwise keep the process
 * alive after the registration failed. Its close is not waited for, and its failure is only
 * logged (see `closeAdapter`).
 */
async function startServer(
  log: FastifyBaseLogger,
  options: ResolvedOptions,
  route: string,
  routeAnyCase: boolean,
  metrics: Metrics,
  hookLimit: number,
): Promise<ParleyServer> {
  let adapter: Adapter | undefined
  try {
    const server = new ParleyServer(
      options,
      log,
      metrics,
      (accepted) => {
        adapter = accepted
      },
      route,
      routeAnyCase,
    )
    checkHandoffBound(server.adapter, options, hookLimit)
    return server
  } catch (err) {
    // Not awaited, as a refused adapter's close is not (see `checkAdapter`): a close that never
    // settles (a store's client waiting for a connection) would hold the registration until
    // Fastify gave up on it, its "did not start in time" in place of this error.
    if (adapter) void closeAdapter(adapter, log)
    throw err
  }
}

/**
 * A drain cut short by Fastify's bound on the preClose hook (`hookLimit`) would end sessions
 * half-way through their handoff. Only an adapter that stores sessions drains: the default one,
 * on a single node, closes at once whatever pluginTimeout is.
 */
function checkHandoffBound(adapter: Adapter, options: ResolvedOptions, hookLimit: number): void {
  // Both read, whatever the first gives: either may be a getter that throws (see adapterMember).
  const handOff = adapterMember(adapter, 'handOff')
  const claimSession = adapterMember(adapter, 'claimSession')
  const drains = !!options.handoff && !!handOff && !!claimSession
  if (options.handoff && drains && hookLimit > 0 && options.handoff.timeout + SEAL_WAIT_MS >= hookLimit) {
    throw new ParleyOptionError(
      'handoff',
      `timeout ${options.handoff.timeout} ms plus ${SEAL_WAIT_MS} ms must stay below Fastify's pluginTimeout (${hookLimit} ms): raise pluginTimeout or lower handoff.timeout`,
    )
  }
}

/** `http://host:port` for a listening address; a wildcard host reads as 127.0.0.1. */
function listenUrl(address: AddressInfo | string | null): string | undefined {
  if (!address || typeof address === 'string') return undefined
  const wildcard = address.address === '::' || address.address === '0.0.0.0'
  const host = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}

/**
 * The Parley plugin (the package's default export): register it, then use `app.parley`. Every
 * option is checked here (a wrong one fails `register` with a `ParleyOptionError`). One
 * registration per Fastify context (a second one fails the same way): two mount points take a
 * context each, siblings, each with its own `path` and `app.parley`.
 *
 * ```ts
 * import Fastify from 'fastify'
 * import parley from '@parley/server'
 *
 * const app = Fastify()
 * await app.register(parley, { path: '/parley' })
 * app.parley.on('connection', (socket) => socket.on('chat', (msg, ack) => ack?.({ ok: true })))
 * await app.listen({ port: 3000 })
 * ```
 */
export const parleyPlugin = fp(parley, { fastify: '5.x', name: '@parley/server' })
