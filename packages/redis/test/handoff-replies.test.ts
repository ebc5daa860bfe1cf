// The client's replies to the questions a node asked a session it handed off: the client makes
// them to the node that took the session over, which sends each one back to the node that asked,
// over Redis, where the question's promise settles with it. Two Parley servers on one real Redis
// behind a round-robin proxy, and the real client; the session moves while both nodes live (its
// WebSocket resume reaches the other node), or the asking node closes before the reply.
import { connect } from '@parley/client'
import { encodeText, PacketType } from '@parley/protocol'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { ServerSocket, SessionClaim } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'

interface Node extends SuiteNode {
  connections: ServerSocket[]
  /** The sockets it took over from another node. */
  restored: ServerSocket[]
  /** What its adapter logged. */
  warnings: string[]
  /** What its server logged at warn or error, read back from its JSON lines. */
  log: Record<string, unknown>[]
}

interface Own {
  /** Runs once a session's snapshot is stored, before its client is told to go. */
  afterStore?: () => void
  /** An adapter that does not forward replies, as one of an earlier version. */
  noForwarding?: boolean
  /** Claims whose `forwardReply` is left out, as by a claimer of an earlier version. */
  claimsWithoutForwarding?: boolean
  /** Claims whose `forwardReply` throws, or rejects, as an adapter of the application's may. */
  forwardingFails?: 'throws' | 'rejects'
}

/** A question the client holds: what it was asked, and how to answer. */
interface Asked {
  what: string
  reply: (answer: string) => void
}

describe.skipIf(skipRedisSuites())('replies to questions asked across a handoff over Redis', () => {
  const { suite, balance } = balancedSuite<Node>()
  const { nodes, clients } = suite
  const prefix = 'replies'

  async function startNode(own: Own = {}): Promise<Node> {
    const client = await connectedClient(suite.redis.url)
    const warnings: string[] = []
    const log: Record<string, unknown>[] = []
    const node: Node = {
      started: undefined as unknown as Started,
      redis: client,
      connections: [],
      restored: [],
      warnings,
      log,
    }
    const factory = redisAdapter({
      client,
      prefix,
      heartbeatInterval: 300,
      log: { warn: (_details, message) => void warnings.push(message) },
    })
    node.started = await startServer(
      {
        adapter: (sockets) => {
          const adapter = factory(sockets)
          const handOff = adapter.handOff!.bind(adapter)
          adapter.handOff = async (snapshot, ttl) => {
            const stored = await handOff(snapshot, ttl)
            own.afterStore?.()
            return stored
          }
          if (own.noForwarding) adapter.forwardsReplies = () => false
          // The claims as another adapter would make them: without `forwardReply` (an earlier
          // version), or with one that throws or rejects.
          const fails = own.forwardingFails
          if (own.claimsWithoutForwarding || fails) {
            const lost = new Error(`forwarding ${fails}`)
            // Typed void, as the contract says; an async method of the application's fits it.
            const failing: () => void =
              fails === 'throws'
                ? () => {
                    throw lost
                  }
                : () => Promise.reject(lost)
            const claimSession = adapter.claimSession.bind(adapter)
            adapter.claimSession = async (sid) => {
              const answer = await claimSession(sid)
              if (answer === null || typeof answer !== 'object' || !('snapshot' in answer)) return answer
              const claim: SessionClaim = answer
              return {
                snapshot: claim.snapshot,
                takeOver: (join) => claim.takeOver(join),
                confirm: () => claim.confirm!(),
                ...(fails && { forwardReply: failing }),
              }
            }
          }
          return adapter
        },
        handoff: { timeout: 5000, retrySpread: 0 },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          socket.on('echo', (value: unknown, done: (value: unknown) => void) => done(value))
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          socket.on('echo', (value: unknown, done: (value: unknown) => void) => done(value))
        })
      },
      {
        return503OnClosing: false,
        logger: { level: 'warn', stream: { write: (line: string) => void log.push(JSON.parse(line)) } },
      },
    )
    nodes.push(node)
    return node
  }

  /**
   * Nodes a and b, and a client connected to a, holding every question it is asked (`asked`)
   * until the test answers it.
   */
  async function scene(ownA: Own = {}, ownB: Own = {}) {
    const a = await startNode(ownA)
    const b = await startNode(ownB)
    const adapterOf = (node: Node) => node.started.app.parley.adapter as RedisAdapter
    await until(
      () => adapterOf(a).liveNodes.length === 1 && adapterOf(b).liveNodes.length === 1,
      5000,
      'a and b live',
    )
    const proxy = await balance([a, b])
    const c = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(c)
    const asked: Asked[] = []
    c.on('q', (what: string, reply: (answer: string) => void) => void asked.push({ what, reply }))
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    const id = c.id!
    const old = a.connections[0]!
    /** The network drops the WebSocket, and the resume reaches b, which asks a for the session. */
    const move = async () => {
      proxy.avoid.clear()
      proxy.avoid.add(0)
      proxy.cut()
      await until(() => c.connected && b.started.app.parley.sockets.has(id), 5000, 'the session moved to b')
    }
    return { a, b, c, id, old, asked, move, proxy }
  }

  /** Records how a question's promise settled, as `what: answer` or `what: code`. */
  function outcome(into: string[], what: string, asked: Promise<unknown>, messages?: string[]): void {
    asked.then(
      (answer) => into.push(`${what}: ${String(answer)}`),
      (error: { code: string; message: string }) => {
        into.push(`${what}: ${error.code}`)
        messages?.push(error.message)
      },
    )
  }

  it('settles the old node’s questions, at the snapshot and in the tail, with the client’s replies', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    // Asked between the snapshot and the cut: into the tail.
    const afterStore = () => outcome(outcomes, 'tail', old!.timeout(10_000).emitWithAck('q', 'tail'))
    const { a, c, id, asked, move, ...rest } = await scene({ afterStore })
    old = rest.old
    // Asked before the move, and awaited at the snapshot: the client holds its reply.
    outcome(outcomes, 'before', old.emitWithAck('q', 'before'))
    await until(() => asked.length === 1, 3000, 'the first question at the client')
    await move()
    await until(() => asked.length === 2, 5000, 'the tail’s question at the client')
    expect(asked.map(({ what }) => what)).toEqual(['before', 'tail'])
    expect(outcomes).toEqual([])
    for (const { what, reply } of [...asked].reverse()) reply(`reply to ${what}`)
    await until(() => outcomes.length === 2, 5000, 'both questions settled on a')
    expect(outcomes).toEqual(['tail: reply to tail', 'before: reply to before'])
    expect(c.id).toBe(id)
    expect(a.started.app.parley.sockets.size).toBe(0)
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  })

  it('settles a question asked into the tail of a drained session while the drain goes on', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    // Once: the other session's store runs it too.
    let once = false
    const afterStore = () => {
      if (!once) outcome(outcomes, 'tail', old!.timeout(10_000).emitWithAck('q', 'tail'))
      once = true
    }
    const { a, b, c, id, asked, ...rest } = await scene({ afterStore })
    old = rest.old
    // Another session of a's, whose client does not come back: the drain waits for its claim
    // (handoff.timeout, 5 s), and a is still up when the reply comes.
    const away = connect(a.started.base, { transports: ['websocket'], reconnection: false })
    clients.push(away)
    await until(() => away.connected, 3000, 'the second client on a')
    const drained = a.started.app.close()
    await until(() => c.connected && b.started.app.parley.sockets.has(id), 5000, 'the session moved to b')
    await until(() => asked.length === 1, 5000, 'the tail’s question at the client')
    asked[0]!.reply('reply to tail')
    await until(() => outcomes.length === 1, 5000, 'the question settled on a')
    expect(outcomes).toEqual(['tail: reply to tail'])
    await within(drained, 10_000, 'the drain')
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  }, 35_000)

  it('takes a reply sent back only from the node that took the session over', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    const afterStore = () => outcome(outcomes, 'tail', old!.timeout(10_000).emitWithAck('q', 'tail'))
    const { a, b, id, asked, move, ...rest } = await scene({ afterStore })
    old = rest.old
    await move()
    await until(() => asked.length === 1, 5000, 'the tail’s question at the client')
    // A third node, which never held the session, sends a's socket replies to each ack id the
    // question may have, on a's own response channel, as only the claimer b may.
    const third = await startNode()
    const node = (n: Node) => (n.started.app.parley.adapter as RedisAdapter).node
    const listener = third.redis.duplicate()
    await listener.connect()
    try {
      const heard: string[] = []
      await listener.subscribe(`${prefix}:response:x`, (text) => void heard.push(JSON.parse(text).n))
      for (let ackId = 1; ackId <= 8; ackId++) {
        const reply = encodeText({ type: PacketType.REPLY, seq: 1, ackId, args: ['forged'] })
        const answered = { n: node(third), id: '', k: 'answered', i: id, p: reply }
        await third.redis.sendCommand(['PUBLISH', `${prefix}:response:${node(a)}`, JSON.stringify(answered)])
      }
      // On the same connection, so a reads it after the replies: its answer says they were read.
      const fetch = { n: 'x', id: 'read', k: 'fetch', o: { r: ['none'], x: [], v: false } }
      await third.redis.sendCommand(['PUBLISH', `${prefix}:request`, JSON.stringify(fetch)])
      await until(() => heard.includes(node(a)), 5000, 'a’s answer to the request after the replies')
    } finally {
      await listener.quit()
    }
    expect(outcomes).toEqual([])
    asked[0]!.reply('reply to tail')
    await until(() => outcomes.length === 1, 5000, 'the question settled on a')
    expect(outcomes).toEqual(['tail: reply to tail'])
    expect(b.started.app.parley.sockets.has(id)).toBe(true)
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  })

  it.each([
    { which: 'that awaits replies', own: {}, code: 'PARLEY_DISCONNECTED' },
    {
      which: 'that does not, as it stored it',
      own: { noForwarding: true },
      code: 'PARLEY_SESSION_MOVED',
    },
  ] as const)(
    'ends the questions of a session that ends on its old node before a claim with $code (a node $which)',
    async ({ own, code }: { own: Own; code: string }) => {
      const outcomes: string[] = []
      const messages: string[] = []
      let old: ServerSocket | undefined
      let stored = false
      const afterStore = () => {
        outcome(outcomes, 'tail', old!.timeout(10_000).emitWithAck('q', 'tail'), messages)
        stored = true
      }
      const { a, c, asked, ...rest } = await scene({ afterStore, ...own })
      old = rest.old
      outcome(outcomes, 'before', old.emitWithAck('q', 'before'), messages)
      await until(() => asked.length === 1, 3000, 'the first question at the client')
      // The client cannot come back meanwhile: no node claims the session.
      rest.proxy.offline = true
      const drained = a.started.app.close()
      await until(() => stored && !c.connected, 5000, 'the session stored and its client told to go')
      // The application ends it while it waits, frozen, for a claim.
      old.disconnect()
      await until(() => outcomes.length === 2, 3000, 'both questions ended')
      expect(outcomes.sort()).toEqual([`before: ${code}`, `tail: ${code}`])
      if (code === 'PARLEY_DISCONNECTED')
        expect(messages).toEqual([
          'the session ended: server disconnect',
          'the session ended: server disconnect',
        ])
      await within(drained, 10_000, 'the drain, with nothing left to wait for')
    },
    30_000,
  )

  it('sends the client’s replies two moves on back to the first node, through the second, and its own to itself', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    // Asked into a's tail: ids 1 and 2. b numbers from half the id space past 1, and c from half
    // past that: from 2 again, where a's second question is.
    let once = false
    const afterStore = () => {
      if (once) return
      once = true
      outcome(outcomes, 'a1', old!.timeout(10_000).emitWithAck('q', 'a1'))
      outcome(outcomes, 'a2', old!.timeout(10_000).emitWithAck('q', 'a2'))
    }
    const a = await startNode({ afterStore })
    const b = await startNode()
    const c = await startNode()
    const all = [a, b, c]
    await until(
      () => all.every((n) => (n.started.app.parley.adapter as RedisAdapter).liveNodes.length === 2),
      5000,
      'a, b and c live',
    )
    const proxy = await balance(all)
    const client = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(client)
    const asked: Asked[] = []
    client.on('q', (what: string, reply: (answer: string) => void) => void asked.push({ what, reply }))
    const only = (i: number) => {
      proxy.avoid.clear()
      for (const j of [0, 1, 2]) if (j !== i) proxy.avoid.add(j)
    }
    only(0)
    client.connect()
    await until(() => client.connected, 3000, 'connect to a')
    const id = client.id!
    old = a.connections[0]!
    /** The network drops the WebSocket, and the resume reaches node `i`, which asks for it. */
    const moveTo = async (i: number) => {
      only(i)
      proxy.cut()
      await until(
        () => client.connected && all[i]!.started.app.parley.sockets.has(id),
        5000,
        `the session moved to ${'abc'[i]}`,
      )
    }
    await moveTo(1)
    await until(() => asked.length === 2, 5000, 'a’s questions at the client')
    await moveTo(2)
    outcome(outcomes, 'c', c.restored[0]!.timeout(5000).emitWithAck('q', 'c'))
    await until(() => asked.length === 3, 5000, 'c’s question at the client')
    for (const { what, reply } of asked) reply(`reply to ${what}`)
    await until(() => outcomes.length === 3, 5000, 'every question settled')
    // c's own with its own reply, never with one of a's: c sent those to b, which sent them on.
    expect(outcomes.sort()).toEqual(['a1: reply to a1', 'a2: reply to a2', 'c: reply to c'])
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  }, 30_000)

  it('drops a reply to a question the old node gave up on, and settles the next one', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    const afterStore = () => {
      outcome(outcomes, 'short', old!.timeout(200).emitWithAck('q', 'short'))
      outcome(outcomes, 'long', old!.timeout(10_000).emitWithAck('q', 'long'))
    }
    const { asked, move, ...rest } = await scene({ afterStore })
    old = rest.old
    await move()
    await until(
      () => asked.length === 2 && outcomes.length === 1,
      5000,
      'both questions asked, one timed out',
    )
    expect(outcomes).toEqual(['short: PARLEY_ACK_TIMEOUT'])
    // Answered in order: the late one reaches a first, where nobody awaits it any more.
    for (const { what, reply } of asked) reply(`reply to ${what}`)
    await until(() => outcomes.length === 2, 5000, 'the second question settled on a')
    expect(outcomes).toEqual(['short: PARLEY_ACK_TIMEOUT', 'long: reply to long'])
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  })

  it('loses a reply whose asking node closed first, quietly, and the session goes on', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    const afterStore = () => outcome(outcomes, 'tail', old!.emitWithAck('q', 'tail'))
    const { a, b, c, asked, move, ...rest } = await scene({ afterStore })
    old = rest.old
    await move()
    await until(() => asked.length === 1, 5000, 'the tail’s question at the client')
    // The asker's wait ends with its server: nobody is left to settle it after.
    await within(a.started.app.close(), 10_000, 'a closed')
    expect(outcomes).toEqual(['tail: PARLEY_SESSION_MOVED'])
    asked[0]!.reply('too late')
    // b read the reply before this (the client's packets come in order), and sent it nowhere.
    expect(await within(c.timeout(3000).emitWithAck('echo', 'after'), 5000, 'an echo from b')).toBe('after')
    expect(b.started.app.parley.sockets.size).toBe(1)
    expect(nodes.flatMap((n) => n.warnings)).toEqual([])
  }, 25_000)

  it('keeps a question’s wait to its own timeout when the new node does not send replies back', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    const afterStore = () => outcome(outcomes, 'tail', old!.timeout(1000).emitWithAck('q', 'tail'))
    const { asked, move, ...rest } = await scene({ afterStore }, { claimsWithoutForwarding: true })
    old = rest.old
    await move()
    await until(() => asked.length === 1, 5000, 'the tail’s question at the client')
    asked[0]!.reply('dropped on b')
    await until(() => outcomes.length === 1, 5000, 'the question settled on a')
    expect(outcomes).toEqual(['tail: PARLEY_ACK_TIMEOUT'])
  })

  it('rejects the questions as the session moves when the old node does not await replies', async () => {
    const outcomes: string[] = []
    let old: ServerSocket | undefined
    const afterStore = () => outcome(outcomes, 'tail', old!.timeout(10_000).emitWithAck('q', 'tail'))
    const { asked, move, ...rest } = await scene({ afterStore, noForwarding: true })
    old = rest.old
    outcome(outcomes, 'before', old.emitWithAck('q', 'before'))
    await until(() => asked.length === 1, 3000, 'the first question at the client')
    await move()
    await until(() => asked.length === 2 && outcomes.length === 2, 5000, 'both asked, both rejected')
    expect(outcomes.sort()).toEqual(['before: PARLEY_SESSION_MOVED', 'tail: PARLEY_SESSION_MOVED'])
    // Dropped on b: nothing more settles there.
    for (const { what, reply } of asked) reply(`reply to ${what}`)
    expect(await within(rest.c.timeout(3000).emitWithAck('echo', 'after'), 5000, 'an echo from b')).toBe(
      'after',
    )
    expect(outcomes).toHaveLength(2)
  })

  it.each(['throws', 'rejects'] as const)(
    'logs a reply the new node’s adapter %s on the way back, once, and the question ends at its timeout',
    async (fails) => {
      const outcomes: string[] = []
      let old: ServerSocket | undefined
      const afterStore = () => outcome(outcomes, 'tail', old!.timeout(1000).emitWithAck('q', 'tail'))
      const { b, c, id, asked, move, ...rest } = await scene({ afterStore }, { forwardingFails: fails })
      old = rest.old
      await move()
      await until(() => asked.length === 1, 5000, 'the tail’s question at the client')
      asked[0]!.reply('lost on b')
      await until(() => outcomes.length === 1, 5000, 'the question settled on a')
      expect(outcomes).toEqual(['tail: PARLEY_ACK_TIMEOUT'])
      // The session goes on on b, which read the reply before this echo.
      expect(await within(c.timeout(3000).emitWithAck('echo', 'after'), 5000, 'an echo from b')).toBe('after')
      const lines = b.log.filter((line) => String(line.msg).includes('client reply(ies) back'))
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatchObject({
        level: 40,
        count: 1,
        socket: id,
        err: { message: `forwarding ${fails}` },
      })
    },
  )
})
