// Two resumes of one session that reach the same node at once (a WebSocket probe and an HTTP
// resume after a network change, both sent there by the balancer), while the session lives on
// another node. The first claims it and takes it over; the second, which found the session
// neither here nor (by then) anything to claim, must not open a new session beside the restored
// one: the session lives on this node now, and it resumes it as any resume that finds it here.
// And a node that takes back a session it had handed off answers for it as its node again.
import { PacketType } from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { beforeEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Closed, type RawClient, rawConnect } from '../../server/test/raw-client.js'
import { RawWebSocket } from '../../server/test/raw-websocket.js'
import { answers, fiveSentThenLeft, holdClaims, replayed } from './held-claims.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'

/** A WebSocket resume moves its session to the node it reached. */
const MOVING: ParleyServerOptions = {
  handoff: { timeout: 1000, batchSize: 500, retrySpread: 0 },
  pingTimeout: 300,
}

/** A handshake under way, its refusal kept for later rather than left unhandled meanwhile. */
function attempt(handshake: Promise<RawClient>): Promise<{ client?: RawClient; err?: unknown }> {
  return handshake.then(
    (client) => ({ client }),
    (err: unknown) => ({ err }),
  )
}

/** The client of an `attempt`, or its refusal thrown. */
async function opened(outcome: Promise<{ client?: RawClient; err?: unknown }>): Promise<RawClient> {
  const { client, err } = await outcome
  if (!client) throw err
  return client
}

describe.skipIf(skipRedisSuites())('two resumes of one session at once on the same node', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  beforeEach(() => {
    nodes = new Nodes()
  })

  /** `count` nodes that see each other, each answering `probe`. */
  async function cluster(count: number): Promise<TestNode[]> {
    const started: TestNode[] = []
    for (let i = 0; i < count; i++) started.push(await nodes!.start(suite.redis.url, {}, false, MOVING))
    await until(() => started.every((n) => n.adapter.liveNodes.length === count - 1), 5000, 'live nodes')
    for (const node of started) {
      const probe = (socket: ServerSocket) =>
        socket.on('probe', (n: unknown, ack?: (reply: unknown) => void) => ack?.(n))
      node.app.parley.on('connection', probe).on('restored', probe)
    }
    return started
  }

  /** Each node's live sessions, and how many new ones (`connection`) each opened. */
  const counts = (all: TestNode[]) => ({
    live: all.map((n) => n.app.parley.socketsCount),
    opened: all.map((n) => n.sockets.length),
  })

  /**
   * The end of two claims of session `id` on b, the first held before Redis or past it: the first
   * (the WebSocket probe's) takes the session over from a; then the later resume's claim runs,
   * finds nothing, and resumes the session restored on b, with no new session anywhere.
   */
  async function laterResumesRestored(
    [a, b]: TestNode[],
    claims: ReturnType<typeof holdClaims>,
    probe: RawWebSocket,
    later: Promise<{ client?: RawClient; err?: unknown }>,
    id: string,
  ): Promise<void> {
    claims.open(0)
    await replayed(probe, id)
    await until(() => !a!.app.parley.sockets.has(id), 2000, 'a letting the session go')
    claims.open(1)
    const resumed = await opened(within(later, 3000, 'the answer to the later resume'))
    suite.raws.push(resumed)
    expect(resumed.open).toMatchObject({ recovered: true, id })
    expect(await answers(resumed)).toBe(true)
    expect(counts([a!, b!])).toEqual({ live: [0, 1], opened: [1, 0] })
    await resumed.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    await until(() => b!.app.parley.socketsCount === 0, 2000, 'the session to end')
    probe.ws.terminate()
  }

  it.each(['polling', 'websocket'] as const)(
    'the later one (%s) found the owner record naming this node: it resumes the restored session, and no new one opens',
    async (medium) => {
      const [a, b] = await cluster(2)
      const { first, hello } = await fiveSentThenLeft(a!)
      const claims = holdClaims(b!)
      // b's WebSocket resume asks a for the session and claims it: the claim wins (the owner
      // record names b), and waits there, the session not restored yet.
      const probe = await RawWebSocket.open(b!.base, hello)
      await until(claims.won, 2000, 'b’s first claim winning')
      // The later resume reaches b meanwhile: the session is not there yet, the owner record
      // names b, so b claims it too; that claim waits before Redis.
      const later = attempt(rawConnect(medium, b!.base, { sid: first.sid, ack: 2 }))
      await until(() => claims.entered() === 2, 2000, 'b’s second claim')
      // The first takeover is over before the second claim runs: it finds nothing to claim.
      await laterResumesRestored([a!, b!], claims, probe, later, first.id)
    },
  )

  it('the later one found the session handed off: it resumes the restored session rather than be told another node took it', async () => {
    const [a, b] = await cluster(2)
    const { first, hello } = await fiveSentThenLeft(a!)
    const claims = holdClaims(b!, true)
    // Both claims wait before Redis: the later resume's lookup found the session handed off.
    const probe = await RawWebSocket.open(b!.base, hello)
    await until(() => claims.entered() === 1, 2000, 'b’s first claim')
    const later = attempt(rawConnect('polling', b!.base, { sid: first.sid, ack: 2 }))
    await until(() => claims.entered() === 2, 2000, 'b’s second claim')
    await laterResumesRestored([a!, b!], claims, probe, later, first.id)
  })

  it('back on the node it had left (a, then b, then a), the session that ends there answers a resume relayed there with its CLOSE, not with the old move', async () => {
    const [a, b, c] = await cluster(3)
    const { first, hello } = await fiveSentThenLeft(a!)
    // To b: a hands the session to b's WebSocket resume, and remembers it moved away.
    const onB = await RawWebSocket.open(b!.base, hello)
    await replayed(onB, first.id)
    await until(() => !a!.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
    onB.ws.terminate()
    // Back to a: b hands it to a's WebSocket resume, whose claim wins (the owner record names a)
    // and waits there.
    const claims = holdClaims(a!)
    const back = await RawWebSocket.open(a!.base, hello)
    await until(claims.won, 2000, 'a’s claim winning')
    // A polling resume reaches c meanwhile, which finds the record naming a and forwards it there
    // (as to the owner): a claims too, and that claim waits before Redis.
    const relayed = attempt(rawConnect('polling', c!.base, { sid: first.sid, ack: 2 }))
    await until(() => claims.entered() === 2, 2000, 'a’s second claim')
    claims.open(0)
    await replayed(back, first.id)
    await until(() => !b!.app.parley.sockets.has(first.id), 2000, 'b letting the session go')
    // The client leaves for good, on the WebSocket: the session ends on a, its CLOSE kept.
    back.ws.send('[1,"client disconnect","bye"]')
    await until(() => !a!.app.parley.sockets.has(first.id), 2000, 'the session to end on a')
    // The relayed resume finds nothing to claim: it hears how the session ended, rather than
    // that it was taken over by another node (it left a for b once, and came back).
    claims.open(1)
    const answer = await within(relayed, 3000, 'the answer to the relayed resume')
    expect(answer.err).toBeInstanceOf(Closed)
    expect((answer.err as Closed).packet).toMatchObject({ reason: 'client disconnect' })
    expect(counts([a!, b!, c!])).toEqual({ live: [0, 0, 0], opened: [1, 0, 0] })
    back.ws.terminate()
  })
})
