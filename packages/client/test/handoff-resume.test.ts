// The resume after CLOSE 'server handoff' on a WebSocket: the nodes are busy taking sessions over,
// so an upgrade may be slow to be answered. The client waits the whole connectTimeout for it (at
// most 10 s) rather than a third of it, and resumes on WebSocket instead of stepping down to SSE
// and climbing back later. Two real servers joined by the server tests' in-process adapter (its
// store stands in for Redis) behind a round-robin proxy; the second answers upgrades late.
import { performance as machine } from 'node:perf_hooks'
import { setTimeout as realSleep } from 'node:timers/promises'
import { connect, type Socket } from '@parley/client'
import { ErrorCode, type TransportName } from '@parley/protocol'
import type { ParleyServerOptions } from '@parley/server'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, sleep, startServer, until } from '../../server/test/helpers.js'

let nodes: Started[] = []
let proxy: RoundRobinProxy | undefined
/** A proxy in front of the balancer, when a test has one. */
let front: FaultProxy | undefined
const clients: Socket[] = []

afterEach(async () => {
  vi.useRealTimers()
  vi.restoreAllMocks()
  vi.unstubAllGlobals()
  for (const c of clients.splice(0)) c.disconnect()
  await sleep(50)
  await front?.close()
  front = undefined
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/** Longer than a third of CONNECT_TIMEOUT (what a first connect waits for an upgrade). */
const UPGRADE_DELAY_MS = 2500
const CONNECT_TIMEOUT = 6000

/** Which requests the busy node answers late, and what each waits for first. */
interface Busy {
  late(request: { method: string; url: string }): boolean
  wait(): Promise<unknown>
}

/** A busy node's upgrades. */
const upgrades: Busy = {
  late: (request) => request.url.startsWith('/parley/ws'),
  wait: () => sleep(UPGRADE_DELAY_MS),
}

/** HELLOs that open or resume a session over SSE or polling (a POST without `sid`). */
const hellos = (request: { method: string; url: string }) =>
  request.method === 'POST' && !request.url.includes('sid=')

/**
 * The clocks of client and servers (`setTimeout` and `performance.now()`) stopped, to be moved by
 * the test alone (`vi.advanceTimersByTimeAsync`): time passes only when the test says, so that a
 * node that keeps the client's tries waiting is waited for in no time. Restored by `afterEach`.
 */
function stopClocks(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
}

/** Whether `promise` has settled yet, as a check for `until` and its kin. */
function ended(promise: Promise<unknown>): () => boolean {
  let settled = false
  void promise.finally(() => {
    settled = true
  })
  return () => settled
}

/**
 * `until`, on the machine's own clock while `stopClocks` holds the test's (`until` sleeps on it).
 * Bounded on `node:perf_hooks`' `performance`, which the faked global one leaves running, and
 * monotonic: a step of the wall clock neither ends the wait nor stretches it.
 */
async function untilReally(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = machine.now() + ms
  while (!check()) {
    if (machine.now() > end) throw new Error(`timed out waiting for ${what}`)
    await realSleep(5)
  }
}

/**
 * With the clocks stopped (`stopClocks`): moves them 10 ms at a time, with a pause on the
 * machine's clock between, until `check()` (bounded by 5 s of the machine's clock): the client's
 * timers and the servers' run as they come, and none passes before what the machine does in
 * its time (a request answered at once) had 5 ms of it.
 */
async function untilTicking(check: () => boolean, what: string): Promise<void> {
  const end = machine.now() + 5000
  while (!check()) {
    if (machine.now() > end) throw new Error(`timed out waiting for ${what}`)
    await vi.advanceTimersByTimeAsync(10)
    await realSleep(5)
  }
}

/**
 * With the clocks stopped (`stopClocks`): lets `ms` pass on them, a try of the client's at a time:
 * the client's wait before its next try (`wait`, its backoff at most) passes; then, once the busy
 * node has that try (`tries()` counts them; on the machine's clock), its `timeout` passes. Each
 * try times out in the step after the one it began in, however short its wait was. Stops early
 * once `done()`.
 */
async function spendTries(
  ms: number,
  tries: () => number,
  { wait, timeout, done = () => false }: { wait: number; timeout: number; done?: () => boolean },
): Promise<void> {
  for (let spent = 0, seen = tries(); spent < ms && !done(); spent += wait + timeout) {
    await vi.advanceTimersByTimeAsync(wait)
    await untilReally(() => tries() > seen, 5000, `try ${seen + 1} at the busy node`)
    seen = tries()
    await vi.advanceTimersByTimeAsync(timeout)
  }
}

/**
 * With the clocks stopped (`stopClocks`): lets `ms` pass on them, 50 ms at a time, with a pause
 * on the machine's clock between: a try that a proxy answers at once has its answer meanwhile.
 */
async function passing(ms: number): Promise<void> {
  for (let spent = 0; spent < ms; spent += 50) {
    await vi.advanceTimersByTimeAsync(50)
    await realSleep(5)
  }
}

/**
 * Stops the clocks (`stopClocks`), then hands `c`'s session off (`handOff`) and waits for the
 * CLOSE. Returns the drain under way, and what the application heard from then on: how many
 * `connect`s, and when a `disconnect` came (on the stopped clocks, from the handoff's start).
 */
async function handedOffOnStoppedClocks(c: Socket, handOff: () => Promise<unknown>) {
  let connects = 0
  c.on('connect', () => connects++)
  stopClocks()
  const closedAt = performance.now()
  let downAt: number | undefined
  c.on('disconnect', () => {
    downAt ??= performance.now() - closedAt
  })
  const drained = handOff()
  await untilReally(() => !c.connected, 3000, 'the handoff CLOSE')
  return { drained, connects: () => connects, downAt: () => downAt }
}

/**
 * Two nodes sharing sessions behind a round-robin proxy, and a client connected to the first on
 * WebSocket; `handOff()` drains the first, sending the client to the second, which answers
 * `busy.late` requests late from then on (until `slow` is set false). `said` is what the client
 * told the application. With `faulty`, the client reaches the balancer through a fault proxy
 * (`front`), which can stand for a balancer with no node to offer. With `refuse`, the second
 * node's handshake middleware throws it from the handoff on, `refuseTimes` times at most
 * (`refusals()` counts them).
 */
async function connectedBeforeHandoff(
  transports: TransportName[] = ['websocket', 'sse'],
  {
    busy = upgrades,
    connectTimeout = CONNECT_TIMEOUT,
    reconnectionDelay = 500,
    randomization = 1,
    faulty = false,
    handoffTimeout = 7000,
    refuse,
    refuseTimes = Number.POSITIVE_INFINITY,
  }: {
    busy?: Busy
    connectTimeout?: number
    reconnectionDelay?: number
    randomization?: number
    faulty?: boolean
    handoffTimeout?: number
    refuse?: Error
    refuseTimes?: number
  } = {},
) {
  const cluster = new Cluster({ handoff: true })
  const options: ParleyServerOptions = { handoff: { timeout: handoffTimeout, retrySpread: 0 } }
  const a = await startServer({ adapter: cluster.adapter('a'), ...options }, undefined, {
    return503OnClosing: false,
  })
  nodes.push(a)
  let slow = false
  let lateUpgrades = 0
  let refusals = 0
  const b = await startServer(
    { adapter: cluster.adapter('b'), ...options },
    (app) => {
      // A node under load: its upgrades (or the requests `busy` names) are answered late.
      app.addHook('onRequest', async (request) => {
        if (slow && busy.late(request)) {
          lateUpgrades++
          await busy.wait()
        }
      })
      if (refuse)
        app.parley.use(async () => {
          if (!slow || refusals >= refuseTimes) return
          refusals++
          throw refuse
        })
    },
    { return503OnClosing: false },
  )
  nodes.push(b)
  const balancer = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
  proxy = balancer
  if (faulty) front = await startFaultProxy(Number(new URL(balancer.url).port))
  const c = connect(`${(front ?? balancer).url}/parley`, {
    transports,
    connectTimeout,
    reconnectionDelay,
    reconnectionDelayMax: reconnectionDelay * 2,
    randomization,
    upgradeDelay: 60_000,
    autoConnect: false,
  })
  clients.push(c)
  const said: string[] = []
  c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
  c.on('transport_error', (name, error) => said.push(`${name} ${error.code}`))
  c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
  balancer.avoid.add(1)
  c.connect()
  await until(() => c.connected, 3000, 'connect to a')
  return {
    c,
    said,
    lateUpgrades: () => lateUpgrades,
    refusals: () => refusals,
    /** The busy node answers on time again. */
    recover: () => {
      slow = false
    },
    handOff: () => {
      slow = true
      balancer.avoid.clear()
      balancer.avoid.add(0)
      return a.app.close()
    },
    /**
     * Drains the first node with the balancer still sending the resume there: the draining node
     * relays it to the second (its upgrade answered late from then on), and the relay ends
     * when the first node closes, right after the OPEN. Resolves once it has closed.
     *
     * The balancer turns to the second node as the client takes the OPEN through the relay, in
     * its `transport` event: the relay's CLOSE may follow in the same read, and the client's
     * next resume (its `retryAfter` is 0) would find the first node closed, were the turn left
     * to a check that polls.
     */
    handOffThroughRelay: async () => {
      c.once('transport', () => {
        slow = true
        balancer.avoid.clear()
        balancer.avoid.add(0)
      })
      const closed = a.app.close()
      await until(() => said.length > 0, CONNECT_TIMEOUT, 'the resume through the relay')
      await closed
    },
  }
}

/**
 * An SSE resume after a handoff whose every try is turned away at once by what stands in front
 * of the nodes (the fault proxy, once `turnAway` set it so) for `ms` of the stopped clocks, by
 * then at least `tries` times; then `letIn` lets the tries through. The application hears
 * nothing of it: the session comes back where it was, `resumed` naming that wait.
 */
async function resumesUnheard(
  turnAway: (front: FaultProxy) => void,
  letIn: (front: FaultProxy) => void,
  { ms, tries, resumed }: { ms: number; tries: number; resumed: string },
): Promise<void> {
  const { c, said, handOff } = await connectedBeforeHandoff(['sse'], {
    connectTimeout: 1000,
    reconnectionDelay: 100,
    faulty: true,
  })
  const id = c.id
  const { drained, connects } = await handedOffOnStoppedClocks(c, handOff)
  // The resume waits for the clocks to move (its retryAfter is 0, on them).
  turnAway(front!)
  await passing(ms)
  expect(front!.refused).toBeGreaterThanOrEqual(tries)
  letIn(front!)
  await untilTicking(() => c.connected, resumed)
  // Not even a `transport_error`: busy nodes turned those tries away, not the transport.
  expect(said).toEqual(['sse -> sse (resume)'])
  expect(connects()).toBe(0)
  expect(c.id).toBe(id)
  expect(c.recovered).toBe(true)
  await untilTicking(ended(drained), 'the drain')
}

describe('a WebSocket resume after a handoff', () => {
  it('waits the whole connectTimeout for a slow upgrade, and stays on WebSocket', async () => {
    const { c, said, handOff } = await connectedBeforeHandoff()
    const id = c.id
    const drained = handOff()
    await until(() => said.some((line) => line.includes('->')), CONNECT_TIMEOUT + 5000, 'the resume')
    expect(said).toEqual(['websocket -> websocket (resume)'])
    expect(c.transport).toBe('websocket')
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    await drained
  })

  it('is patient too when the application calls disconnect() then connect() meanwhile', async () => {
    // The session handed off is never claimed (its client left it): the drain waits out its
    // handoff timeout, which need only outlast the test's own waits, not the default 7 s.
    const { c, said, lateUpgrades, handOff } = await connectedBeforeHandoff(undefined, {
      handoffTimeout: 3000,
    })
    const drained = handOff()
    // The resume's upgrade is under way, held by the busy node: the application starts anew.
    await until(() => lateUpgrades() === 1, CONNECT_TIMEOUT, 'the resume to reach the busy node')
    c.disconnect()
    c.connect()
    await until(() => c.connected, CONNECT_TIMEOUT + 5000, 'the new connection')
    // Impatient, it gave up on the upgrade after a third of connectTimeout and took SSE.
    expect(said).toEqual(['disconnect client disconnect'])
    expect(c.transport).toBe('websocket')
    expect(lateUpgrades()).toBe(2)
    await drained
  })

  it('steps down all the same when no upgrade is answered, and says so: the transport failed, not a node', async () => {
    // A busy node answers a HELLO late; an upgrade that nothing answers is a WebSocket that no
    // longer gets through (a proxy that swallows it), however patient the client is after a
    // handoff: SSE takes the session, and the application hears why.
    let answer = () => {}
    const never = new Promise<void>((resolve) => {
      answer = resolve
    })
    const { c, said, lateUpgrades, handOff } = await connectedBeforeHandoff(['websocket', 'sse'], {
      busy: { late: upgrades.late, wait: () => never },
      connectTimeout: 1000,
    })
    const id = c.id
    const drained = handOff()
    try {
      await until(() => said.some((line) => line.includes('->')), 5000, 'the resume')
    } finally {
      // The held upgrade goes on (its client gone), so that the node can close.
      answer()
    }
    expect(said).toEqual(['websocket PARLEY_HANDSHAKE_TIMEOUT', 'websocket -> sse (downgrade)'])
    expect(lateUpgrades()).toBe(1)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    await drained
  })
})

describe('a WebSocket resume relayed by the draining node', () => {
  it('is patient again when the relay ends with that node, within 10 s of the CLOSE: no word of a disconnect', async () => {
    // WebSocket alone, as a client whose network lets nothing else through: impatient, its
    // resume after the relay would fail after a third of connectTimeout, and the application
    // hear 'disconnect' in the middle of a deploy (seen in the cluster's rolling restart).
    const { c, said, lateUpgrades, handOffThroughRelay } = await connectedBeforeHandoff(['websocket'])
    const id = c.id
    await handOffThroughRelay()
    // The relay ended (the node closed, with a CLOSE 'server handoff' of its own to the client):
    // the client resumes once more, at the busy node.
    await until(() => said.length >= 2, CONNECT_TIMEOUT + 5000, 'the resume after the relay')
    expect(said).toEqual(['websocket -> websocket (resume)', 'websocket -> websocket (resume)'])
    expect(lateUpgrades()).toBe(1)
    expect(c.transport).toBe('websocket')
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
  })
})

describe('a resume after a handoff, at a node slow to answer handshakes', () => {
  it('does not spend the quiet 10 s on tries the node answered too late: no word of a disconnect', async () => {
    // SSE alone, as the cluster's rolling restart under load: every HELLO the busy node gets is
    // answered after the client gave up on it, for 12 s. Ten seconds of tries that time out
    // used up the quiet time after the CLOSE, and the application heard 'transport close'
    // (then 'connect' again, the session recovered), though no node had refused the session.
    const { c, said, lateUpgrades, recover, handOff } = await connectedBeforeHandoff(['sse'], {
      busy: { late: hellos, wait: () => sleep(1500) },
      connectTimeout: 1000,
      reconnectionDelay: 100,
    })
    const id = c.id
    const { drained, connects } = await handedOffOnStoppedClocks(c, handOff)
    // 12 s on the stopped clocks, each try 1 s, each wait at most 200 ms: tried and timed out
    // all along.
    await spendTries(12_000, lateUpgrades, { wait: 200, timeout: 1000 })
    expect(lateUpgrades()).toBeGreaterThanOrEqual(9)
    recover()
    await untilTicking(() => c.connected, 'the resume once the node answers on time')
    // Not even a `transport_error`: a HELLO a node did not answer in time blames no transport then.
    expect(said).toEqual(['sse -> sse (resume)'])
    expect(connects()).toBe(0)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    await untilTicking(ended(drained), 'the drain')
  })

  it('stops not counting them 20 s after the CLOSE: the application hears of the disconnect then', async () => {
    // A node that never answers a HELLO (nor does any other): each try times out. Those tries
    // push the end of the quiet time back, but not past twice the quiet time after the CLOSE.
    let answer = () => {}
    const never = new Promise<void>((resolve) => {
      answer = resolve
    })
    onTestFinished(() => answer())
    const { c, said, lateUpgrades, handOff } = await connectedBeforeHandoff(['sse'], {
      busy: { late: hellos, wait: () => never },
      connectTimeout: 1000,
      reconnectionDelay: 100,
      randomization: 0,
    })
    const { drained, downAt } = await handedOffOnStoppedClocks(c, handOff)
    // Tries of 1 s each and waits of 200 ms (100 ms before the second): the quiet time's end is
    // pushed back by 1 s every 1.2 s. Uncapped, it would meet the clock 60 s after the CLOSE.
    await spendTries(30_000, lateUpgrades, { wait: 200, timeout: 1000, done: () => downAt() !== undefined })
    // Nothing of the tries within the quiet time: at most the `transport_error` of a last try
    // begun past its end (and every failed try after the disconnect is heard of).
    expect(said).toContain('disconnect transport close')
    expect(said.slice(0, said.indexOf('disconnect transport close')).length).toBeLessThanOrEqual(1)
    // At the end of the first try that ends past 20 s.
    expect(downAt()).toBeGreaterThanOrEqual(20_000)
    expect(downAt()).toBeLessThanOrEqual(21_200)
    await untilTicking(ended(drained), 'the drain')
  })
})

describe.each([503, 502] as const)('a resume after a handoff, answered %i at once for a while', (status) => {
  it('does not spend the quiet 10 s on those refusals and the waits between them: no word of a disconnect', async () => {
    // SSE alone, as in the cluster's rolling restart under load: every try of the resume is
    // refused at once by a balancer whose nodes are all draining or restarting, for 12 s. The
    // tries and their backoff used up the quiet time after the CLOSE, and the application heard
    // 'transport close' (then 'connect' again, the session recovered) in the middle of a deploy.
    await resumesUnheard(
      (front) => {
        front.unavailable = status
      },
      (front) => {
        front.unavailable = 0
      },
      // A try (or two: a 503 is tried once more) every 200 ms at most.
      { ms: 12_000, tries: 60, resumed: 'the resume once the balancer has a node again' },
    )
  })
})

describe('a resume after a handoff, answered 503 at once for good', () => {
  it('stops not counting the refusals 20 s after the CLOSE: the application hears of the disconnect then', async () => {
    const { c, said, handOff } = await connectedBeforeHandoff(['sse'], {
      connectTimeout: 1000,
      reconnectionDelay: 100,
      randomization: 0,
      faulty: true,
    })
    const { drained, downAt } = await handedOffOnStoppedClocks(c, handOff)
    front!.unavailable = 503
    // Waits of 100 ms, then 200 ms, each pushing the end of the quiet time back as long.
    // Uncapped, it would never meet the clock.
    for (let spent = 0; spent < 25_000 && downAt() === undefined; spent += 1000) await passing(1000)
    // Nothing of the tries within the quiet time: at most the `transport_error`s of a last attempt
    // begun past its end, a 503 tried once more (and every failed try after the disconnect is
    // heard of).
    expect(said).toContain('disconnect transport close')
    expect(said.slice(0, said.indexOf('disconnect transport close')).length).toBeLessThanOrEqual(2)
    // At the end of the first attempt that ends past 20 s.
    expect(downAt()).toBeGreaterThanOrEqual(20_000)
    expect(downAt()).toBeLessThanOrEqual(20_500)
    front!.unavailable = 0
    await untilTicking(ended(drained), 'the drain')
  })
})

describe.each([
  { transports: ['websocket', 'sse'], code: 'APP_TOKEN_EXPIRED' },
  { transports: ['sse'], code: ErrorCode.REFUSED },
] as const)(
  "a resume after a handoff that the next node's middleware refuses ($transports.0, $code)",
  ({ transports, code }) => {
    it('ends at once, as any refusal: transport_error, disconnect, connect_error with willRetry false', async () => {
      // The node that takes the session over refuses this client (a token that expired meanwhile, a
      // ban): no busy node, and no try within the quiet time after the CLOSE would be let in. The
      // client went on trying unheard, its middleware refusing each, and said so only 10 s later.
      const { c, said, refusals, handOff } = await connectedBeforeHandoff([...transports], {
        refuse: Object.assign(new Error('not you'), { code }),
        handoffTimeout: 3000,
      })
      const failed: string[] = []
      c.on('connect_error', (error, willRetry) => failed.push(`${error.code} ${willRetry}`))
      const drained = handOff()
      await until(() => failed.length > 0, 5000, 'the connect_error')
      // No step down either: a lesser transport would meet the same middleware.
      expect(said).toEqual([`${transports[0]} ${code}`, 'disconnect transport close'])
      expect(failed).toEqual([`${code} false`])
      expect(refusals()).toBe(1)
      expect(c.connected).toBe(false)
      await drained
    })
  },
)

describe("a resume after a handoff turned away with a busy node's code, in a refusal's status", () => {
  it('is tried again unheard, as a busy node is, and comes back where it was', async () => {
    // Something in front of the nodes (an application's hook) says that they are full with a
    // 403, the status of a refusal of the client: its code says a busy node, where a later try
    // may find room, and the quiet time after the CLOSE holds for it.
    await resumesUnheard(
      (front) => {
        front.answer = { status: 403, body: JSON.stringify({ code: ErrorCode.SERVER_FULL, message: 'full' }) }
      },
      (front) => {
        front.answer = undefined
      },
      // A try every 200 ms at most.
      { ms: 2000, tries: 10, resumed: 'the resume once the nodes have room' },
    )
  })
})

describe('a polling resume after a handoff', () => {
  it('resumes on polling, where the session was, though nothing remembers it and WebSocket works again', async () => {
    const cluster = new Cluster({ handoff: true })
    const options: ParleyServerOptions = { handoff: { timeout: 7000, retrySpread: 0 } }
    let refuseWebSocket = true
    // Both nodes refuse the upgrade (400) until the handoff: the client lands on polling.
    const refusing = (app: Parameters<NonNullable<Parameters<typeof startServer>[1]>>[0]) => {
      app.addHook('onRequest', async (request, reply) => {
        if (refuseWebSocket && request.url.startsWith('/parley/ws')) await reply.code(400).send()
      })
    }
    const a = await startServer({ adapter: cluster.adapter('a'), ...options }, refusing, {
      return503OnClosing: false,
    })
    nodes.push(a)
    const b = await startServer({ adapter: cluster.adapter('b'), ...options }, refusing, {
      return503OnClosing: false,
    })
    nodes.push(b)
    proxy = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
    // A storage that keeps nothing: no transport is remembered.
    const storage = {
      getItem: () => null,
      setItem: () => {
        throw new Error('quota')
      },
      removeItem: () => {},
    }
    const c = connect(`${proxy.url}/parley`, {
      transports: ['websocket', 'polling'],
      upgradeDelay: 60_000,
      storage,
      autoConnect: false,
    })
    clients.push(c)
    const said: string[] = []
    c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
    c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    expect(c.transport).toBe('polling')
    refuseWebSocket = false
    proxy.avoid.clear()
    proxy.avoid.add(0)
    const drained = a.app.close()
    await until(() => said.length > 0, 8000, 'the resume')
    // From the top of the list, it resumed on WebSocket: a switch the client did not choose.
    expect(said).toEqual(['polling -> polling (resume)'])
    expect(c.recovered).toBe(true)
    await drained
  })
})

describe("an online event while the client waits out a handoff's retryAfter", () => {
  it('does not hurry the resume: the server spreads its clients over time', async () => {
    const win = new EventTarget()
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    const cluster = new Cluster({ handoff: true })
    const options: ParleyServerOptions = { handoff: { timeout: 7000, retrySpread: 3000 } }
    const a = await startServer({ adapter: cluster.adapter('a'), ...options }, undefined, {
      return503OnClosing: false,
    })
    nodes.push(a)
    const b = await startServer({ adapter: cluster.adapter('b'), ...options }, undefined, {
      return503OnClosing: false,
    })
    nodes.push(b)
    proxy = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
    const c = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(c)
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    proxy.avoid.clear()
    proxy.avoid.add(0)
    // The drain draws each session's retryAfter at random within retrySpread: near all of it.
    vi.spyOn(Math, 'random').mockReturnValue(0.999)
    const resumed = new Promise<number>((resolve) => c.once('transport', () => resolve(performance.now())))
    const drained = a.app.close()
    await until(() => !c.connected, 3000, 'the handoff CLOSE')
    const closedAt = performance.now()
    win.dispatchEvent(new Event('online'))
    // retryAfter is 2998 ms; the CLOSE came before `closedAt`.
    expect((await resumed) - closedAt).toBeGreaterThan(2500)
    expect(c.recovered).toBe(true)
    await drained
  })
})
