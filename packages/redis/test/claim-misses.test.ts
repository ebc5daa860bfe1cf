// A resume that saw its session leave its node, and whose claim then takes nothing: what the
// client is told depends on why. Nothing stored (another node took the session) or a store that
// cannot say: try again. But a snapshot no node can read, or a claim won by a node that left
// before it took the session over, is never claimable: the client gets a new session at once,
// rather than one more "try again" whose next try finds nothing all the same.
import { createHash } from 'node:crypto'
import { type Packet, PacketType } from '@parley/protocol'
import type { ParleyServerOptions, SessionSnapshot } from '@parley/server'
import { beforeEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { type RawClient, Refused, rawConnect } from '../../server/test/raw-client.js'
import { fiveSentThenLeft, holdClaim } from './held-claims.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'

/** A WebSocket resume moves its session to the node it reached. */
const MOVING: ParleyServerOptions = {
  handoff: { timeout: 1000, batchSize: 500, retrySpread: 0 },
  pingTimeout: 300,
}

/** A line of a node's server log. */
interface LogLine {
  level: number
  msg: string
  err?: { message?: string; code?: string }
}

/** The Redis key of `sid`'s handoff (see handoff.ts). */
const handoffKey = (sid: string) => `parley:handoff:${createHash('sha256').update(sid).digest('base64url')}`

/** A handshake under way, its refusal kept for later rather than left unhandled meanwhile. */
function attempt(handshake: Promise<RawClient>): Promise<{ client?: RawClient; err?: unknown }> {
  return handshake.then(
    (client) => ({ client }),
    (err: unknown) => ({ err }),
  )
}

describe.skipIf(skipRedisSuites())('a resume whose claim takes nothing', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  beforeEach(() => {
    nodes = new Nodes()
  })

  /** `count` nodes that see each other, each logging its server's lines at warn into `logs`. */
  async function cluster(count: number): Promise<{ node: TestNode; logs: LogLine[] }[]> {
    const started: { node: TestNode; logs: LogLine[] }[] = []
    for (let i = 0; i < count; i++) {
      const logs: LogLine[] = []
      const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
      const node = await nodes!.start(suite.redis.url, {}, false, MOVING, { logger })
      started.push({ node, logs })
    }
    await until(
      () => started.every(({ node }) => node.adapter.liveNodes.length === count - 1),
      5000,
      'live nodes',
    )
    return started
  }

  /** The resume got a new session at once: OPEN, not recovered, under another sid. */
  async function startedAnew(outcome: Promise<{ client?: RawClient; err?: unknown }>, sid: string) {
    const { client, err } = await within(outcome, 3000, 'the answer to the resume')
    if (!client) throw err
    suite.raws.push(client)
    expect(client.open).toMatchObject({ recovered: false })
    expect(client.sid).not.toBe(sid)
    return client
  }

  it('a snapshot no node can read: a new session at once, and the coded error logged', async () => {
    const [a, b] = await cluster(2)
    const { first } = await fiveSentThenLeft(a!.node)
    const claim = holdClaim(b!.node)
    // b's WebSocket resume has a hand the session off, then claims it.
    const resume = attempt(rawConnect('websocket', b!.node.base, { sid: first.sid, ack: 2 }))
    await until(claim.entered, 2000, 'b claiming the session')
    // What a node of a later version would have stored.
    await b!.node.redis.sendCommand([
      'HSET',
      handoffKey(first.sid),
      'snapshot',
      JSON.stringify({ v: 2, sid: first.sid }),
    ])
    claim.open()
    await startedAnew(resume, first.sid)
    expect(b!.node.sockets).toHaveLength(1)
    const line = b!.logs.find(({ msg }) => msg.includes('could not be restored'))
    expect(line?.err).toMatchObject({
      code: 'PARLEY_INVALID_PACKET',
      message: "a handed-off session's snapshot was refused: version 2 is not known here",
    })
    // Nothing is left to claim: the keys went with the claim.
    expect(await b!.node.redis.exists(handoffKey(first.sid))).toBe(0)
  })

  it('a claim Redis refuses: told to try again, as when Redis cannot be asked, and the next try takes the session over', async () => {
    const [a, b] = await cluster(2)
    const { first } = await fiveSentThenLeft(a!.node)
    const claim = holdClaim(b!.node)
    const resume = attempt(rawConnect('websocket', b!.node.base, { sid: first.sid, ack: 2 }))
    await until(claim.entered, 2000, 'b claiming the session')
    // Redis refuses every write for a moment, as a replica does after a failover.
    const redis = b!.node.redis
    await redis.sendCommand(['CONFIG', 'SET', 'min-replicas-to-write', '1'])
    let answer: { client?: RawClient; err?: unknown }
    try {
      claim.open()
      answer = await within(resume, 3000, 'the answer to the resume')
    } finally {
      await redis.sendCommand(['CONFIG', 'SET', 'min-replicas-to-write', '0'])
    }
    expect(answer.err).toBeInstanceOf(Refused)
    expect(answer.err).toMatchObject({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message:
        'PARLEY_SERVER_SHUTTING_DOWN: the session could not be looked up or claimed in the store now: try again',
    })
    expect(b!.node.warnings).toContain(
      '@parley/redis: Redis refused a claim of a handed-off session; the client tries again',
    )
    expect(b!.node.sockets).toHaveLength(0)
    // The refused claim changed nothing: the client's next try takes the session over, whole.
    const again = await rawConnect('websocket', b!.node.base, { sid: first.sid, ack: 2 })
    suite.raws.push(again)
    expect(again.open).toMatchObject({ recovered: true, id: first.id })
    const replayed: Packet[] = []
    for (let n = 0; n < 3; n++) replayed.push(await again.next((p) => p.type === PacketType.EVENT, 2000))
    expect(replayed).toMatchObject([3, 4, 5].map((seq) => ({ seq, args: [seq] })))
    expect(b!.node.sockets).toHaveLength(0)
  })

  it('a move its node gave up on and kept: told the session stayed on its node, and the next try resumes it there', async () => {
    const [a, b, c] = await cluster(3)
    const { first } = await fiveSentThenLeft(a!.node)
    const sid = first.sid
    // a's store answers the write of its move only after a stopped waiting for it
    // (handoff.timeout): the snapshot is stored meanwhile, and a keeps the session.
    const adapter = a!.node.adapter
    const handOff = adapter.handOff.bind(adapter)
    let answer: () => void = () => {}
    const late = new Promise<void>((resolve) => {
      answer = resolve
    })
    let stored = false
    adapter.handOff = async (snapshot: SessionSnapshot, ttl: number) => {
      const result = await handOff(snapshot, ttl)
      stored = true
      await late
      return result
    }
    const claim = holdClaim(c!.node)
    // b asks a for the session (a WebSocket resume of it reached b): a freezes it and stores it.
    const asked = b!.node.adapter.requestHandOff(a!.node.adapter.node, sid)
    await until(() => stored, 2000, 'a storing the session')
    // A polling resume reaches c meanwhile: c finds the session handed off by a, and claims it.
    const resume = attempt(rawConnect('polling', c!.node.base, { sid, ack: 2 }))
    await until(claim.entered, 2000, 'c claiming the session')
    // a gives up on the write, keeps the session and takes the snapshot back; its store answers.
    expect(await within(asked, 5000, 'a answering b')).toBe(false)
    answer()
    const owner = `parley:session:${createHash('sha256').update(sid).digest('base64url')}`
    let named: string | null = null
    const end = performance.now() + 3000
    while (named !== adapter.node && performance.now() < end) {
      named = await a!.node.redis.get(owner)
      if (named !== adapter.node) await sleep(10)
    }
    expect(named, 'the owner record naming a again').toBe(adapter.node)
    claim.open()
    const { err } = await within(resume, 3000, 'the answer to the resume')
    expect(err).toBeInstanceOf(Refused)
    expect(err).toMatchObject({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'PARLEY_SERVER_SHUTTING_DOWN: the session stayed on its node: try again',
    })
    expect(c!.node.sockets).toHaveLength(0)
    // The client's next try at c is sent to a, where the session is, whole.
    const again = await rawConnect('polling', c!.node.base, { sid, ack: 2 })
    suite.raws.push(again)
    expect(again.open).toMatchObject({ recovered: true, id: first.id })
    expect([a, b, c].map((n) => n!.node.app.parley.socketsCount)).toEqual([1, 0, 0])
  })

  it('a claim won by a node that left before it took the session over: a new session at once', async () => {
    const [a, b, c] = await cluster(3)
    const { first } = await fiveSentThenLeft(a!.node)
    const claim = holdClaim(c!.node)
    // c's WebSocket resume has a hand the session off, then claims it.
    const resume = attempt(rawConnect('websocket', c!.node.base, { sid: first.sid, ack: 2 }))
    await until(claim.entered, 2000, 'c claiming the session')
    // b claims it first (a resume of the same session reached b), and b stops before it takes
    // the session over: the session went with it.
    const won = await b!.node.adapter.claimSession(first.sid)
    expect(won).toMatchObject({ snapshot: { sid: first.sid } })
    await nodes!.stop(b!.node)
    claim.open()
    await startedAnew(resume, first.sid)
    expect(c!.node.sockets).toHaveLength(1)
  })
})
