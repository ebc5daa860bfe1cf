// A WebSocket resume that lands on a node other than the session's owner, the owner alive: the
// owner hands that one session off (as a drain does for all of them) and the node the client
// reached claims it, so that the session lives where its WebSocket ends, not behind a relay.
// Two Parley servers on the in-process test adapter (cluster-adapter.ts, whose store stands in
// for Redis) behind a round-robin proxy; the proxy cuts the client's connection and sends its
// resume to the other node. The same runs on Redis in packages/redis/test/handoff-e2e.test.ts.
import { type ClientOptions, connect, type Socket } from '@parley/client'
import { ErrorCode } from '@parley/protocol'
import type { Adapter, ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = handoffScene()
const { nodes, clients } = opened

interface Node {
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** Each socket's `disconnect` reason on this node. */
  ended: string[]
  /** What each socket id sent, in order, as this node received it. */
  received: Map<string, number[]>
}

function setup(node: Node, socket: ServerSocket) {
  socket.on('up', (n: number) => {
    const list = node.received.get(socket.id) ?? []
    list.push(n)
    node.received.set(socket.id, list)
  })
  socket.on('disconnect', (reason: string) => node.ended.push(reason))
}

async function twoNodes(cluster: Cluster, options: ParleyServerOptions = {}) {
  const list: Node[] = []
  for (const name of ['a', 'b']) {
    const node: Node = {
      started: undefined as unknown as Started,
      connections: [],
      restored: [],
      ended: [],
      received: new Map(),
    }
    node.started = await startServer(
      { adapter: cluster.adapter(name), handoff: { timeout: 2000, retrySpread: 0 }, ...options },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          socket.data = { name: 'ada' }
          void socket.join('everyone')
          setup(node, socket)
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          setup(node, socket)
        })
      },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const proxy = await startRoundRobin(list.map((n) => Number(new URL(n.started.base).port)))
  opened.proxy = proxy
  return { list, proxy, base: `${proxy.url}/parley` }
}

/**
 * A WebSocket client with steady traffic both ways (numbered `up` from the client, numbered
 * `down` broadcasts to the room from the owner's node) while `move` runs; returns what each end
 * got once the traffic stopped and everything arrived.
 */
async function trafficAcross(list: Node[], c: Socket, move: () => Promise<void>) {
  const got: number[] = []
  c.on('down', (n: number) => got.push(n))
  let up = 0
  let down = 0
  const traffic = setInterval(() => {
    up++
    c.emit('up', up)
    down++
    list[0]!.started.app.parley.to('everyone').emit('down', down)
  }, 5)
  await sleep(100)
  await move()
  await sleep(150)
  clearInterval(traffic)
  await until(() => c.connected && got.length >= down, 5000, 'every broadcast')
  const id = c.id!
  await until(() => list.reduce((k, n) => k + (n.received.get(id)?.length ?? 0), 0) >= up, 5000, 'every up')
  await sleep(100)
  return {
    up: list.flatMap((n) => n.received.get(id) ?? []),
    upSent: up,
    down: got,
    downSent: down,
  }
}

/** Two nodes, a WebSocket client connected through the proxy, and the index of its node. */
async function clientOnTwoNodes(
  cluster: Cluster,
  options: ParleyServerOptions = {},
  clientOptions: ClientOptions = {},
) {
  const { list, proxy } = await twoNodes(cluster, options)
  const c = connect(`${proxy.url}/parley`, { transports: ['websocket'], ...clientOptions })
  clients.push(c)
  await until(() => c.connected, 3000, 'connect')
  const owner = list.findIndex((n) => n.connections.length === 1)
  return { list, proxy, c, owner }
}

/** Cuts the client's connection and sends its resume to the other node; waits until it is back. */
async function resumeOnTheOther(proxy: RoundRobinProxy, c: Socket, owner: number): Promise<void> {
  const before = proxy.upgrades[1 - owner]!
  proxy.avoid.add(owner)
  proxy.cut()
  await until(() => proxy.upgrades[1 - owner]! > before && c.connected, 5000, 'resumed')
}

const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe('a WebSocket resume on another node', () => {
  it('moves the session there: nothing lost or repeated, no new connection, data and rooms kept', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    const other = list[1 - owner]!
    const result = await trafficAcross(list, c, async () => {
      // The network drops the connection; the resume reaches the other node.
      proxy.avoid.add(owner)
      proxy.cut()
      await until(() => other.restored.length === 1, 5000, 'restored on the other node')
    })
    expect(result.up).toEqual(numbers(result.upSent))
    expect(result.down).toEqual(numbers(result.downSent))
    expect(cluster.handOffRequests).toBe(1)
    expect(c.recovered).toBe(true)
    // One `connection` in all; the old node heard 'server handoff', the new one 'restored'.
    expect(list.reduce((k, n) => k + n.connections.length, 0)).toBe(1)
    expect(list[owner]!.ended).toEqual(['server handoff'])
    const moved = other.restored[0]!
    expect(moved.id).toBe(c.id)
    expect(moved.data).toEqual({ name: 'ada' })
    expect(moved.rooms.has('everyone')).toBe(true)
    // It lives on the other node now: the old one no longer holds it.
    expect(list[owner]!.started.app.parley.sockets.size).toBe(0)
    expect(other.started.app.parley.sockets.get(c.id!)).toBe(moved)
  })

  it('is not handed on by its claimer before its claim is confirmed; after the confirm, it lives there', async () => {
    const cluster = new Cluster({ handoff: true })
    cluster.holdConfirms = true
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    const claimer = list[1 - owner]!
    proxy.avoid.add(owner)
    proxy.cut()
    // The claimer read the old node's tail; its claim may still turn out 'kept' or 'ended'.
    await until(() => cluster.heldConfirms.length === 1, 5000, 'the claim to confirm')
    const [sid] = cluster.handOffSids
    // Asked for by a node a WebSocket resume reached: handed on now, the session could be
    // dropped by the confirm while its snapshot, stored again, stays for another node to claim.
    expect(await cluster.nodes.get(owner === 0 ? 'b' : 'a')!.sockets.handOff(sid!)).toBe(false)
    expect(cluster.handOffSids).toEqual([sid])
    cluster.heldConfirms[0]!('taken')
    await until(() => c.connected && claimer.restored.length === 1, 5000, 'restored on the claimer')
    expect(c.recovered).toBe(true)
    expect(cluster.handOffSids).toEqual([sid])
  })

  it('still asks for the session an owner that could not be reached lately over the network', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    const ownerName = owner === 0 ? 'a' : 'b'
    const other = list[1 - owner]!
    // The owner's address leads nowhere from the other node; the adapter still reaches it.
    const nowhere = await holdPort()
    try {
      cluster.addresses.set(ownerName, `http://127.0.0.1:${nowhere.port}`)
      // A poll of another of its sessions found it unreachable: remembered for a while.
      const raw = await rawConnect('websocket', list[owner]!.started.base)
      const poll = await fetch(`${other.started.base}/poll?v=1&sid=${raw.sid}`)
      expect(poll.status).toBe(400)
      expect(other.started.app.parley.unreachableOwnerCount).toBe(1)
      raw.close()
      await resumeOnTheOther(proxy, c, owner)
      expect(c.recovered).toBe(true)
      expect(cluster.handOffRequests).toBe(1)
      expect(other.restored.map((s) => s.id)).toEqual([c.id])
    } finally {
      nowhere.release()
    }
  })

  it('is relayed to the owner, which keeps the session, when the owner does not answer', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    // Alive and serving its clients, but the other node's requests do not reach it.
    cluster.unreachable.add(owner === 0 ? 'a' : 'b')
    const result = await trafficAcross(list, c, () => resumeOnTheOther(proxy, c, owner))
    expect(result.up).toEqual(numbers(result.upSent))
    expect(result.down).toEqual(numbers(result.downSent))
    expect(cluster.handOffRequests).toBe(1)
    // Never claimed: the owner still holds it, the other node restored nothing.
    expect(list[1 - owner]!.restored).toEqual([])
    expect(cluster.handoffs.size).toBe(0)
    expect(list[owner]!.ended).toEqual([])
    expect(list[owner]!.started.app.parley.sockets.get(c.id!)?.connected).toBe(true)
  })

  it('leaves the session with its owner, nothing lost, when its snapshot cannot be stored', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    cluster.storeUp = false
    const result = await trafficAcross(list, c, () => resumeOnTheOther(proxy, c, owner))
    expect(result.up).toEqual(numbers(result.upSent))
    expect(result.down).toEqual(numbers(result.downSent))
    expect(cluster.handOffRequests).toBeGreaterThanOrEqual(1)
    expect(c.recovered).toBe(true)
    expect(list[1 - owner]!.restored).toEqual([])
    expect(list[owner]!.ended).toEqual([])
    const socket = list[owner]!.started.app.parley.sockets.get(c.id!)
    expect(socket?.connected).toBe(true)
    expect(socket?.rooms.has('everyone')).toBe(true)
  })

  it.each([
    ['a kept packet', true],
    ['nextAckId', 'nextAckId'],
  ] as const)(
    'gives the client a new session at once when the snapshot cannot be read (%s); it goes on on WebSocket, nothing acknowledged lost',
    async (_, unreadable) => {
      const cluster = new Cluster({ handoff: true })
      const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
      const other = list[1 - owner]!
      const events: string[] = []
      c.on('connect', () => events.push('connect'))
      c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
      const errors: string[] = []
      c.on('transport_error', (name: string, error: { code: string }) => errors.push(`${name} ${error.code}`))
      const first = c.id!
      for (let n = 1; n <= 3; n++) c.emit('up', n)
      await until(() => list[owner]!.received.get(first)?.length === 3, 3000, 'the first three')
      cluster.unreadableSnapshots = unreadable
      proxy.avoid.add(owner)
      proxy.cut()
      // Sent while the client resumes: kept by the client, unacknowledged, until a session takes them.
      for (let n = 4; n <= 5; n++) c.emit('up', n)
      await until(() => c.connected && c.id !== first, 5000, 'a new session')
      // The cut, then the answer to the resume: a new session, at once (no try could ever
      // restore that snapshot), not a "try again" nor a bare close.
      expect(errors).toEqual(['websocket PARLEY_TRANSPORT_ERROR'])
      expect(c.transport).toBe('websocket')
      expect(c.recovered).toBe(false)
      expect(events).toEqual(['disconnect session expired', 'connect'])
      expect(other.restored).toEqual([])
      expect(list[owner]!.ended).toEqual(['server handoff'])
      await until(() => other.received.get(c.id!)?.at(-1) === 5, 3000, 'the two sent meanwhile')
      expect(list[owner]!.received.get(first)).toEqual([1, 2, 3])
      // Nothing lost: the new session got, in order, what the client held unacknowledged (the
      // old session's ACK of 1 to 3 may not have reached it before the cut).
      const again = other.received.get(c.id!)!
      expect(again).toEqual(numbers(5).slice(5 - again.length))
      expect(again.length).toBeGreaterThanOrEqual(2)
    },
  )

  it('leaves no claimable snapshot when the store writes it after the owner gave up', async () => {
    const cluster = new Cluster({ handoff: true })
    // handoff.timeout 1 s: the store below outlasts it however long, and a store that answers
    // does so within a few milliseconds.
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster, {
      handoff: { timeout: 1000, retrySpread: 0 },
    })
    // Slower than handoff.timeout: the owner thaws the session and the resume is relayed to it;
    // the write lands after that (the store finishes once the resume is back), in a store that
    // does not take it back by itself.
    let finish = () => {}
    cluster.storeFinishesAfter = new Promise((resolve) => {
      finish = resolve
    })
    await resumeOnTheOther(proxy, c, owner)
    const [sid] = cluster.handOffSids
    expect(cluster.handOffsAnswered).toBe(0)
    finish()
    await until(() => cluster.handOffsAnswered === 1, 5000, 'the late answer of the store')
    // Another node's claim finds nothing: the session lives on its owner only.
    expect(await cluster.claim(owner === 0 ? 'b' : 'a', sid!)).toBeNull()
    // At once as the owner gave up (a store that can takes the write back then), and again
    // once the store answered (one that cannot withdraws it now).
    expect(cluster.withdrawals).toBe(2)
    expect(list[1 - owner]!.restored).toEqual([])
    expect(list[owner]!.ended).toEqual([])
    expect(list[owner]!.started.app.parley.sockets.get(c.id!)?.connected).toBe(true)
    // With a store that answers in time, the next resume there moves it, once.
    cluster.storeFinishesAfter = undefined
    await resumeOnTheOther(proxy, c, owner)
    await until(() => list[1 - owner]!.restored.length === 1, 5000, 'restored on the other node')
    expect(c.recovered).toBe(true)
    expect(list[owner]!.ended).toEqual(['server handoff'])
    expect(list[owner]!.started.app.parley.sockets.size).toBe(0)
  })

  it('runs what the client sent, and what waited at the freeze, only once the move given up on is taken back', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster, {
      handoff: { timeout: 1000, retrySpread: 0 },
    })
    const socket = list[owner]!.connections[0]!
    // up 1 waits in a middleware: the freeze takes it for the snapshot (its claimer would run it).
    let firstPass = true
    let letThrough = () => {}
    const passed = new Promise<void>((resolve) => {
      letThrough = resolve
    })
    socket.use(async ([, n]) => {
      if (n === 1 && firstPass) {
        firstPass = false
        await passed
      }
    })
    c.emit('up', 1)
    await until(() => !firstPass, 3000, 'up 1 in the middleware')
    // The store writes the snapshot, and answers only when told: past handoff.timeout (1 s) the
    // owner gives the move up, and the resume is relayed to it.
    let answer = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      answer = resolve
    })
    await resumeOnTheOther(proxy, c, owner)
    letThrough()
    c.emit('up', 2)
    // The snapshot may still be claimed (a store that takes a late write back only once it
    // answered): nothing the client sent runs on the owner yet, and nothing is acknowledged.
    await sleep(500)
    expect(list[owner]!.received.get(c.id!)).toBeUndefined()
    answer()
    // Taken back (withdrawn once the store answered): both run, once, in order.
    await until(() => list[owner]!.received.get(c.id!)?.length === 2, 5000, 'up 1 and 2 on the owner')
    await sleep(300)
    expect(list[owner]!.received.get(c.id!)).toEqual([1, 2])
    expect(list[1 - owner]!.restored).toEqual([])
    expect(list[owner]!.ended).toEqual([])
  })

  it('leaves no claimable snapshot when the store wrote it but its answer was lost (a rejection)', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    // The write reaches the store, its reply does not: the owner takes the rejection as not
    // stored, keeps the session, and the resume is relayed to it.
    cluster.storeRejects = true
    await resumeOnTheOther(proxy, c, owner)
    const [sid] = cluster.handOffSids
    expect(cluster.handOffsAnswered).toBe(1)
    // Another node's claim finds nothing: the session lives on its owner only. (The owner
    // withdrew the snapshot as the rejection came, before it relayed the resume.)
    expect(await cluster.claim(owner === 0 ? 'b' : 'a', sid!)).toBeNull()
    // At once as the owner gave up, and again as the rejection came.
    expect(cluster.withdrawals).toBe(2)
    expect(list[1 - owner]!.restored).toEqual([])
    expect(list[owner]!.ended).toEqual([])
    expect(list[owner]!.started.app.parley.sockets.get(c.id!)?.connected).toBe(true)
    // Its owner record names the owner again: the next resume there moves it, once.
    cluster.storeRejects = false
    await resumeOnTheOther(proxy, c, owner)
    await until(() => list[1 - owner]!.restored.length === 1, 5000, 'restored on the other node')
    expect(c.recovered).toBe(true)
    expect(list[owner]!.ended).toEqual(['server handoff'])
    expect(list[owner]!.started.app.parley.sockets.size).toBe(0)
  })

  it('moves it again once the recovery window passed, when the store never answered its handoff', async () => {
    const cluster = new Cluster({ handoff: true })
    // A short window (how long the owner waits for a lost answer) and a short handoff.timeout.
    const window = 1500
    // The client's connection is cut again and again, each time within 2 s of its resume: its
    // backoff would grow past the wait for each resume (5 s) on a slow machine.
    const { list, proxy, c, owner } = await clientOnTwoNodes(
      cluster,
      { recovery: { window }, handoff: { timeout: 300, retrySpread: 0 } },
      { reconnectionDelay: 50, reconnectionDelayMax: 200 },
    )
    const other = list[1 - owner]!
    cluster.storeSilent = true
    await resumeOnTheOther(proxy, c, owner)
    // The owner gave up on the answer and kept the session; the resume was relayed to it.
    expect(cluster.handOffSids).toHaveLength(1)
    expect(other.restored).toEqual([])
    expect(list[owner]!.started.app.parley.sockets.get(c.id!)?.connected).toBe(true)
    // While that answer may still come, the session is not moved again.
    cluster.storeSilent = false
    await resumeOnTheOther(proxy, c, owner)
    expect(cluster.handOffSids).toHaveLength(1)
    expect(other.restored).toEqual([])
    // Past the window the owner stops waiting for it: the next resume there moves the session.
    await sleep(window)
    // Tried again until it moves: a timer may fire late on a busy machine.
    const deadline = performance.now() + 15_000
    while (other.restored.length === 0) {
      if (performance.now() > deadline) throw new Error('the session was never moved again')
      await resumeOnTheOther(proxy, c, owner)
      await until(() => other.restored.length === 1, 500, 'restored on the other node').catch(() => {})
    }
    expect(c.recovered).toBe(true)
    expect(cluster.handOffSids).toHaveLength(2)
    expect(list[owner]!.ended).toEqual(['server handoff'])
    expect(list[owner]!.started.app.parley.sockets.size).toBe(0)
  })

  it('is moved, not ended, when its node closes while the store is still writing it', async ({
    onTestFinished,
  }) => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, c, owner } = await clientOnTwoNodes(cluster)
    const old = list[owner]!
    const other = list[1 - owner]!
    const events: string[] = []
    c.on('connect', () => events.push('connect'))
    c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    // The store holds its write of the move's snapshot until the test lets it finish.
    let finishStore = () => {}
    cluster.storeFinishesAfter = new Promise((resolve) => {
      finishStore = resolve
    })
    onTestFinished(() => finishStore())
    const id = c.id!
    proxy.avoid.add(owner)
    proxy.cut()
    // The resume reached the other node, which asked for the session: frozen, being stored.
    await until(() => cluster.handoffs.has(old.connections[0]!.session.sid), 5000, 'the move to start')
    // The node closes meanwhile: its drain leaves the frozen session to the move.
    const closing = old.started.app.close()
    await sleep(200)
    finishStore()
    await closing
    await until(() => c.connected && other.restored.length === 1, 5000, 'restored on the other node')
    expect(old.ended).toEqual(['server handoff'])
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    expect(events).toEqual([])
  })

  it('ends the session at a claim that comes before its store answered: its open request is answered in the tail', async ({
    onTestFinished,
  }) => {
    const cluster = new Cluster({ handoff: true })
    const { list, c, owner } = await clientOnTwoNodes(cluster)
    const node = list[owner]!
    const [name, other] = owner === 0 ? ['a', 'b'] : ['b', 'a']
    const socket = node.connections[0]!
    let asked = false
    socket.on('ask', () => {
      asked = true
    })
    // A request the owner's handler has not answered when the move freezes the session.
    const answer = c.timeout(20_000).emitWithAck('ask', 'q')
    answer.catch(() => {})
    await until(() => asked, 3000, 'the request on the owner')
    // The store writes the snapshot (claimable) and holds its answer to the owner.
    let answerStore = () => {}
    cluster.storeAnswersAfter = new Promise((resolve) => {
      answerStore = resolve
    })
    onTestFinished(() => answerStore())
    const sid = socket.session.sid
    const asking: Adapter = cluster.nodes.get(other)!
    const moved = asking.requestHandOff!(name, sid)
    await until(() => cluster.handoffs.get(sid)?.stored === true, 3000, 'the snapshot stored')
    // A resume of the client's reaches a node that claims the session first, and takes it over.
    const claim = await cluster.claim(other, sid)
    const { tail } = await claim!.takeOver(() => {})
    expect(node.ended).toEqual(['server handoff'])
    expect(tail.filter((text) => text.includes(ErrorCode.SESSION_MOVED))).toHaveLength(1)
    answerStore()
    // Stored and claimed: nothing is withdrawn, and no claim is awaited.
    expect(await moved).toBe(true)
    expect(cluster.withdrawals).toBe(0)
    expect(node.started.app.parley.sockets.size).toBe(0)
  })
})
