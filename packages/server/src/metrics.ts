import type { CloseReason, TransportName } from '@parley/protocol'
import type { Registry } from 'prom-client'
import { type MetricsRegistry, ParleyOptionError } from './options.js'

/** Which way an application packet went. */
export type Direction = 'in' | 'out'

/**
 * What the server reports to Prometheus. Without the `metrics` option every session runs on
 * `noMetrics`, whose methods do nothing: the hot paths pay one empty call, and prom-client is
 * never loaded.
 */
export interface Metrics {
  /** A new session opened (not a resume). */
  handshake(): void
  /** A handshake for a new session was refused: this node held `maxSessions`. */
  full(): void
  /** A HELLO named a session: `recovered` when it was still alive and took the transport. */
  resume(recovered: boolean): void
  /** A session moved from one kind of transport to another. */
  transportSwitch(from: TransportName, to: TransportName): void
  /** A session ended. */
  disconnect(reason: CloseReason): void
  /** One application packet (EVENT, REPLY, ERROR) of `size` characters. */
  message(direction: Direction, transport: TransportName, size: number): void
  /** A reply awaited with `timeout(ms)` did not come in time. */
  ackTimeout(): void
  /**
   * A drain with handoff: a session of this node was stored for another one ('stored'), could
   * not be within `handoff.timeout`, or the adapter's `handOff` rejected ('failed': a drain ends
   * it 'server shutdown', a move keeps it here; a rejected one's snapshot is withdrawn all the
   * same, in case the store wrote it, and counted no more), was not claimed before the drain
   * ended, nor while the adapter settled it before its seal ('unclaimed'), or had its snapshot taken back
   * ('withdrawn'): it ended here while frozen for a handoff, its snapshot stored or being stored,
   * by the application's disconnect or a tail past maxBufferedBytes (a session a drain ends
   * because its snapshot was not stored in time counts 'failed' only); or a move counted 'failed'
   * went on here and the store wrote its snapshot after all (counted both). Or this node took one
   * over with the old node's whole tail ('taken'), without it ('incomplete'), after the old
   * node had stopped waiting for a claim ('late': what was sent in between is lost; a longer
   * `handoff.timeout` helps), or after the old node drained with no other node alive and sealed
   * its tail at once, this node having started after it ('restarted': what was sent to the
   * session between the old node's close and the claim is lost; no timeout would help), or
   * took one over whose old node's tail does not follow its snapshot ('broken_tail': the tail
   * is dropped rather than risk a gap or a duplicate, the session ends 'session expired' and its
   * client starts anew), or took one over without its client at the request of a draining node
   * that nobody else claimed it from ('adopted': kept for its client's resume until its recovery
   * window ends; the draining node counts it 'stored' only). Or this node claimed one and gave it back ('given_back': its claim won
   * only after the node had closed, its snapshot could not be read, or the middleware refused
   * its resume before the node began to close; its client starts anew). A refusal once it had
   * gives nothing back, nor does a middleware that moment found still running: the session is
   * taken over without its client, counted as any takeover, and handed on by the drain.
   */
  handoff(outcome: HandOffOutcome): void
  /**
   * A heartbeat timer that sends PINGs ran `seconds` after its time (once per run, which may
   * PING many sessions): the event loop was busy. A client that hears no PING for pingInterval +
   * pingTimeout takes the connection for lost, so delays near pingTimeout explain resumes and
   * ping timeouts that no network caused.
   */
  pingDelay(seconds: number): void
}

/** See `Metrics.handoff`. */
export type HandOffOutcome = (typeof HAND_OFF_OUTCOMES)[number]

/** Every `outcome` label of `parley_handoffs_total` (the README's Metrics table lists them). */
export const HAND_OFF_OUTCOMES = [
  'stored',
  'failed',
  'unclaimed',
  'withdrawn',
  'taken',
  'incomplete',
  'late',
  'restarted',
  'broken_tail',
  'given_back',
  'adopted',
] as const

/** Does nothing: the metrics of a server that was given no registry. */
export const noMetrics: Metrics = {
  handshake() {},
  full() {},
  resume() {},
  transportSwitch() {},
  disconnect() {},
  message() {},
  ackTimeout() {},
  handoff() {},
  pingDelay() {},
}

/** What the metrics read at scrape time rather than count on the way. */
export interface MetricSources {
  /** The transport of every live session, null while it waits for a resume. */
  transports(): Iterable<TransportName | null>
  /** `unknownSessionCount`. */
  unknownSessions(): number
}

/** Parley's metrics, made in the application's registry, and their way out of it. */
export interface MadeMetrics {
  metrics: Metrics
  /**
   * Takes these metrics out of the registry: a registration that fails after making them would
   * leave them there, and the next registration with the same registry (the application's
   * corrected one) would fail on their names. A registry that cannot remove keeps them, retired
   * (see `retire`), for that registration to adopt.
   */
  remove(): void
  /**
   * Their server closed: they stay in the registry (a last scrape, or a push at shutdown, reads
   * them), until the next Parley server made with that registry takes their place, or, where
   * the registry cannot remove them, adopts them.
   */
  retire(): void
}

/** One server's metrics, which the next server made with their registry may adopt. */
interface MetricSet {
  /** Binds the set to a new server's `sources`, and hands it over, no longer retired. */
  adopt(sources: MetricSources): MadeMetrics
}

/**
 * Metrics whose server closed, each mapped to its whole set: the next `createMetrics` in their
 * registry takes them out, or adopts them when the registry cannot remove them.
 */
const retired = new WeakMap<object, MetricSet>()

/** The name of every metric `createMetrics` makes. */
export const METRIC_NAMES = [
  'parley_sessions',
  'parley_unknown_session_requests_total',
  'parley_handshakes_total',
  'parley_sessions_refused_total',
  'parley_resumes_total',
  'parley_transport_switches_total',
  'parley_disconnects_total',
  'parley_messages_total',
  'parley_bytes_total',
  'parley_ack_timeouts_total',
  'parley_handoffs_total',
  'parley_slow_consumer_total',
  'parley_ping_delay_seconds',
] as const

/**
 * Creates Parley's metrics in `registry` (never in prom-client's global one). prom-client is
 * imported here, so that it loads only for applications that ask for metrics.
 */
export async function createMetrics(registry: MetricsRegistry, sources: MetricSources): Promise<MadeMetrics> {
  const { Counter, Gauge, Histogram } = await import('prom-client')
  // Checked at registration to be one (by its methods): the option is typed loosely on purpose.
  const promRegistry = registry as Registry
  // A closed server's, in an application made again in the same process with the same registry
  // (a restart in place, a test's): theirs to take over.
  takeOut(registry, (metric) => retired.has(metric))
  const left = leftBehind(registry)
  if (left) return left.adopt(sources)
  const registers = [promRegistry]
  // What the metrics read at scrape time: the sources of the server that holds them now.
  let current = sources

  // Read when scraped: nothing to keep in step as sessions come, move and go.
  const sessions = new Gauge({
    name: 'parley_sessions',
    help: 'Live sessions, by transport (detached: waiting for a resume).',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      this.reset()
      for (const name of current.transports()) this.inc({ transport: name ?? 'detached' })
    },
  })
  let unknownSeen = 0
  const unknown = new Counter({
    name: 'parley_unknown_session_requests_total',
    help: 'Requests and resumes answered as naming a session this node does not know.',
    registers,
    collect() {
      const total = current.unknownSessions()
      this.inc(total - unknownSeen)
      unknownSeen = total
    },
  })
  const handshakes = new Counter({
    name: 'parley_handshakes_total',
    help: 'New sessions opened.',
    registers,
  })
  const refusedFull = new Counter({
    name: 'parley_sessions_refused_total',
    help: 'Handshakes for a new session refused because this node held maxSessions.',
    registers,
  })
  const resumes = new Counter({
    name: 'parley_resumes_total',
    help: 'Resumes (HELLO naming a session), by whether the session was recovered.',
    labelNames: ['recovered'] as const,
    registers,
  })
  const switches = new Counter({
    name: 'parley_transport_switches_total',
    help: 'Sessions moving from one kind of transport to another.',
    labelNames: ['from', 'to'] as const,
    registers,
  })
  const disconnects = new Counter({
    name: 'parley_disconnects_total',
    help: 'Sessions ended, by close reason.',
    labelNames: ['reason'] as const,
    registers,
  })
  const messages = new Counter({
    name: 'parley_messages_total',
    help: 'Application packets (EVENT, REPLY, ERROR), by direction and transport.',
    labelNames: ['direction', 'transport'] as const,
    registers,
  })
  const bytes = new Counter({
    name: 'parley_bytes_total',
    help: 'Encoded length of application packets, by direction and transport.',
    labelNames: ['direction', 'transport'] as const,
    registers,
  })
  const ackTimeouts = new Counter({
    name: 'parley_ack_timeouts_total',
    help: 'Replies awaited with timeout(ms) that did not come in time.',
    registers,
  })
  const handoffs = new Counter({
    name: 'parley_handoffs_total',
    help: 'Sessions handed off by a draining node, or taken over here, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  })
  const slowConsumers = new Counter({
    name: 'parley_slow_consumer_total',
    help: 'Sessions ended because the client read too slowly (past maxBufferedBytes).',
    registers,
  })
  const pingDelays = new Histogram({
    name: 'parley_ping_delay_seconds',
    help: 'How long after its time a heartbeat timer that sends PINGs ran (a busy event loop).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })

  const made = [
    handshakes,
    refusedFull,
    resumes,
    switches,
    disconnects,
    messages,
    bytes,
    ackTimeouts,
    handoffs,
    slowConsumers,
    pingDelays,
  ]
  const metrics: Metrics = {
    handshake: () => handshakes.inc(),
    full: () => refusedFull.inc(),
    resume: (recovered) => resumes.inc({ recovered: String(recovered) }),
    transportSwitch: (from, to) => switches.inc({ from, to }),
    disconnect(reason) {
      disconnects.inc({ reason })
      if (reason === 'slow consumer') slowConsumers.inc()
    },
    message(direction, transport, size) {
      messages.inc({ direction, transport })
      bytes.inc({ direction, transport }, size)
    },
    ackTimeout: () => ackTimeouts.inc(),
    handoff: (outcome) => handoffs.inc({ outcome }),
    pingDelay: (seconds) => pingDelays.observe(seconds),
  }
  const mine = [sessions, unknown, ...made]
  const set: MetricSet = {
    adopt(next) {
      for (const metric of mine) retired.delete(metric)
      // Counters count on from where the closed server's left them, as in one process they
      // should; the new server's requests for unknown sessions are counted from its first.
      current = next
      unknownSeen = 0
      return handed
    },
  }
  const handed: MadeMetrics = {
    metrics,
    remove() {
      // Only the metrics this call made: another of the same name is not Parley's to take out.
      const own = new Set<unknown>(mine)
      if (!takeOut(registry, (metric) => own.has(metric))) handed.retire()
    },
    retire() {
      for (const metric of mine) retired.set(metric, set)
    },
  }
  return handed
}

/**
 * The metrics a closed Parley server left in `registry` under every one of Parley's names, for
 * the new server to adopt; undefined when the registry holds none of those names. Checked before
 * any is made: prom-client refuses a name the registry holds with an uncoded error, and only at
 * that metric, the ones made before it left in the registry, where they would fail the
 * registration that mends the clash. Two mount points sharing one registry meet it at once, on
 * the first name. Metrics of a server still open, or of the application, are never adopted:
 * their counts are not the new server's to add to.
 */
function leftBehind(registry: MetricsRegistry): MetricSet | undefined {
  const held = METRIC_NAMES.map((name) => {
    const metric = registry.getSingleMetric(name)
    const set = typeof metric === 'object' && metric !== null ? retired.get(metric) : undefined
    return { name, held: metric !== undefined, set }
  })
  const taken = held.find((each) => each.held && each.set === undefined)
  if (taken) {
    throw new ParleyOptionError(
      'metrics.registry',
      `already holds a metric named "${taken.name}" (another Parley server's, one not closed, or the application's own): give each Parley server a registry of its own`,
    )
  }
  const sets = new Set(held.map((each) => each.set))
  if (sets.size === 1) return held[0]?.set
  // Only a registry that cannot remove keeps a closed server's metrics; some of them gone (the
  // application's doing), the rest can neither be adopted as a whole nor made again.
  const missing = held.find((each) => !each.held)
  throw new ParleyOptionError(
    'metrics.registry',
    `holds metrics a closed Parley server left there, ${missing ? `but not "${missing.name}"` : 'but of more than one server'}, and has no removeSingleMetric to take them out: give this Parley server a registry of its own`,
  )
}

/**
 * Takes Parley's metrics that `which` picks out of `registry`; false when the registry cannot
 * remove. Looked up by their names, with the one lookup the registration checked the registry
 * for (`getSingleMetric`): an object with the methods `MetricsRegistry` names (a registry of the
 * application's own making, in front of prom-client's) lists none, and one without
 * `removeSingleMetric` keeps them, retired, for the next server to adopt (see `leftBehind`),
 * rather than fail the registration with a TypeError.
 */
function takeOut(registry: MetricsRegistry, which: (metric: object) => boolean): boolean {
  const remove = (registry as Partial<Pick<Registry, 'removeSingleMetric'>>).removeSingleMetric
  if (typeof remove !== 'function') return false
  for (const name of METRIC_NAMES) {
    const metric = registry.getSingleMetric(name)
    if (typeof metric === 'object' && metric !== null && which(metric)) remove.call(registry, name)
  }
  return true
}
