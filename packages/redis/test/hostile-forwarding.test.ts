// Hostile input across nodes: requests for a session that reach a node which does not own it
// are forwarded (HTTP) or relayed (WebSocket) to its owner over Redis, or the session moves (a
// WebSocket resume with handoff on). Whatever a raw client sends that way, the answer is the
// coded one the owner gives for the same input sent to it directly, the nodes live on, the
// owner's session is intact for an honest client (or ends exactly as it would on the owner),
// and nothing is left behind: sockets closed, sessions back to zero, no timers.
import http from 'node:http'
import net from 'node:net'
import { PacketType } from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { beforeEach, describe, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Closed, type RawClient, Refused, rawConnect } from '../../server/test/raw-client.js'
import { RawWebSocket, rawUpgradeHead } from '../../server/test/raw-websocket.js'
import { answers, fiveSentThenLeft, holdClaim, replayed, stallOwnerLookUp } from './held-claims.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'

const MAX_PAYLOAD = 4096
/** Short, so that a stalled body is given up within the test's bounds. */
const PING_TIMEOUT = 300
const SERVER: ParleyServerOptions = { handoff: false, maxPayload: MAX_PAYLOAD, pingTimeout: PING_TIMEOUT }
/** The same, with a WebSocket resume moving its session to the node it reached. */
const MOVING: ParleyServerOptions = { ...SERVER, handoff: { timeout: 1000, batchSize: 500, retrySpread: 0 } }

type HttpKind = 'sse' | 'polling'
const segment = (kind: HttpKind) => (kind === 'sse' ? 'sse' : 'poll')

/** What a node's sockets went through: their `disconnect` reasons, by socket id. */
interface Watched {
  node: TestNode
  reasons: Map<string, string>
}

describe.skipIf(skipRedisSuites())('hostile input across nodes', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  let timersBefore = 0

  beforeEach(() => {
    nodes = new Nodes()
    timersBefore = timers()
  })

  /** `count` nodes on the suite's Redis, each answering `probe` and recording disconnects. */
  async function cluster(count = 2, server: ParleyServerOptions = SERVER): Promise<Watched[]> {
    const started: TestNode[] = []
    for (let i = 0; i < count; i++) started.push(await nodes!.start(suite.redis.url, {}, false, server))
    await until(() => started.every((n) => n.adapter.liveNodes.length === count - 1), 5000, 'live nodes')
    return started.map((node) => {
      const reasons = new Map<string, string>()
      const watch = (socket: ServerSocket) => {
        socket.on('probe', (n: unknown, ack?: (reply: unknown) => void) => ack?.(n))
        socket.on('disconnect', (reason: string) => reasons.set(socket.id, reason))
      }
      node.app.parley.on('connection', watch)
      node.app.parley.on('restored', watch)
      return { node, reasons }
    })
  }

  /** An honest raw client of `node`, closed after the test. */
  async function honest(kind: 'websocket' | HttpKind, node: TestNode): Promise<RawClient> {
    const client = await rawConnect(kind, node.base)
    suite.raws.push(client)
    return client
  }

  /**
   * Nothing left: every node lives and holds no session once the honest clients said goodbye,
   * and once the nodes are closed, no timer of theirs is left.
   */
  async function nothingLeft(watched: Watched[]): Promise<void> {
    for (const raw of suite.raws.splice(0)) {
      await raw.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' }).catch(() => 0)
      raw.close()
    }
    const count = () => watched.reduce((sum, w) => sum + w.node.app.parley.socketsCount, 0)
    await until(() => count() === 0, 3000, 'every session to end')
    await nodes!.closeAll()
    await until(() => timers() <= timersBefore, 3000, `timers back to ${timersBefore} (${timers()})`)
  }

  describe.each(['sse', 'polling'] as const)('an upstream POST (%s)', (kind) => {
    /** Each body, posted once to the owner and once to the other node, for sessions of the owner. */
    const bodies: [string, string | Buffer][] = [
      ['not JSON', '[5,1,"e",["a"],0'],
      [
        'not UTF-8',
        Buffer.concat([Buffer.from('[5,1,"e",["a'), Buffer.from([0xff, 0xc3]), Buffer.from('"],0]')]),
      ],
      ['a packet of the wrong shape', '[5,1,"e","not a list",0]'],
      ['an unknown packet type', '[42]'],
      ['a HELLO mid-session', '[8,{}]'],
      ['a forbidden key', '[5,1,"e",[{"__proto__":1}],0]'],
      ['a good packet, then a bad one', '[5,1,"e",[1],0]\n[5,2,"e"'],
      ['an empty body', ''],
      ['a CLOSE', '[1,"client disconnect","bye"]'],
      ['a seq far ahead', '[5,900719925474099,"e",[1],0]'],
      ['a lying ACK', '[4,9007199254740991]'],
    ]

    it.each(bodies)('%s: the answer and the session’s fate are those of its owner', async (what, body) => {
      const [a, b] = await cluster()
      const outcome = async (target: Watched) => {
        const client = await honest(kind, a!.node)
        const answer = await post(`${target.node.base}/${segment(kind)}?v=1&sid=${client.sid}`, body)
        const fate = a!.reasons.get(client.id) ?? ((await answers(client)) ? 'lives' : 'silent')
        return { ...answer, fate }
      }
      const direct = await outcome(a!)
      const forwarded = await outcome(b!)
      expect(forwarded).toEqual(direct)
      expect(b!.node.app.parley.socketsCount).toBe(0)
      // A gap lets the transport go (a seq far ahead), once it stayed open a while: its session
      // waits for a resume that these clients do not make, and their goodbye finds no transport.
      // Ended here instead.
      const sockets = () => [...a!.node.app.parley.sockets.values()]
      if (what === 'a seq far ahead')
        await until(() => sockets().every((s) => s.transport === null), 3000, 'the transports let go')
      for (const socket of sockets()) if (socket.transport === null) socket.disconnect()
      await nothingLeft([a!, b!])
    })

    it('past maxPayload, by Content-Length or chunked: 413 and the session ends, as on its owner', async () => {
      const [a, b] = await cluster()
      for (const chunked of [false, true]) {
        const outcome = async (target: Watched) => {
          const client = await honest(kind, a!.node)
          const url = `${target.node.base}/${segment(kind)}?v=1&sid=${client.sid}`
          const answer = await post(url, `[5,1,"e",["${'x'.repeat(MAX_PAYLOAD)}"],0]`, chunked)
          return {
            ...answer,
            fate: a!.reasons.get(client.id) ?? ((await answers(client)) ? 'lives' : 'silent'),
          }
        }
        const direct = await outcome(a!)
        expect(direct).toMatchObject({
          status: 413,
          code: 'PARLEY_PAYLOAD_TOO_LARGE',
          fate: 'payload too large',
        })
        expect(await outcome(b!)).toEqual(direct)
      }
      await nothingLeft([a!, b!])
    })

    it('cut mid-way on the other node: nothing reaches the owner, whose session goes on', async () => {
      const [a, b] = await cluster()
      const client = await honest(kind, a!.node)
      const socket = await rawSocket(b!.node)
      const half = '[5,1,"e",["half"'
      socket.write(postHead(b!.node, kind, client.sid, 100) + half)
      socket.destroy()
      expect(await answers(client)).toBe(true)
      expect(a!.reasons.size).toBe(0)
      await nothingLeft([a!, b!])
    })

    it('a body that stops coming on the other node: 408, its connection closed, the session intact', async () => {
      const [a, b] = await cluster()
      const client = await honest(kind, a!.node)
      const outcome = async (target: Watched) => {
        const socket = await rawSocket(target.node)
        let received = ''
        socket.on('data', (data: Buffer) => {
          received += data.toString('latin1')
        })
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
        // A slowloris: a few bytes at first, then nothing.
        socket.write(postHead(target.node, kind, client.sid, 100))
        socket.write('[5,1,')
        await within(closed, 2000, 'the connection to close')
        return { status: Number(received.split(' ')[1]), code: /"code":"(\w+)"/.exec(received)?.[1] }
      }
      const direct = await outcome(a!)
      expect(direct).toEqual({ status: 408, code: 'PARLEY_BAD_REQUEST' })
      expect(await outcome(b!)).toEqual(direct)
      expect(await answers(client)).toBe(true)
      expect(a!.reasons.size).toBe(0)
      await nothingLeft([a!, b!])
    })

    it('headers that fit on the owner but not once forwarded: told to try again with CORS headers, never a new session', async () => {
      const page = 'http://page.test'
      const [a, b] = await cluster(2, { ...SERVER, allowedOrigins: [page] })
      const client = await honest(kind, a!.node)
      const url = `${b!.node.base}/${segment(kind)}?v=1&sid=${client.sid}`
      const seen: string[] = []
      // Around Node's limit on headers (16 KiB): the node that forwards adds a few of its own.
      for (let size = 16_000; size <= 16_256; size += 8) {
        const answer = await exchange(url, { origin: page, cookie: 'x'.repeat(size) }, '[3]')
        const said = `${answer.status} ${answer.code ?? 'uncoded'}`
        if (seen.at(-1) !== said) seen.push(said)
        if (answer.code === 'PARLEY_SERVER_SHUTTING_DOWN') {
          // Readable by the page, and saying what the owner answered.
          expect(answer.allowOrigin).toBe(page)
          expect(answer.message).toBe(
            'the node of this session answered the forwarded request with HTTP 431: try again',
          )
        }
      }
      // Taken while it fits, then told to try again, then refused by the node itself (431).
      expect(seen).toEqual(['204 uncoded', '503 PARLEY_SERVER_SHUTTING_DOWN', '431 uncoded'])
      expect(b!.node.app.parley.unreachableOwnerCount).toBe(0)
      expect(await answers(client)).toBe(true)
      expect(a!.reasons.size).toBe(0)
      await nothingLeft([a!, b!])
    })

    it.each(['-1', 'abc', '1.5', '99999999999999999999', '9007199254740991', ''])(
      'a GET with the ack %j on the other node: answered as on the owner',
      async (ack) => {
        const [a, b] = await cluster()
        const outcome = async (target: Watched) => {
          const client = await honest(kind, a!.node)
          const url = `${target.node.base}/${segment(kind)}?v=1&sid=${client.sid}&ack=${ack}`
          const answer = await getHead(url)
          return {
            ...answer,
            // A GET that is taken replaces the client's own downstream: alive or ended is what counts.
            fate: a!.reasons.get(client.id) ?? (a!.node.app.parley.sockets.has(client.id) ? 'lives' : 'gone'),
          }
        }
        const direct = await outcome(a!)
        expect(await outcome(b!)).toEqual(direct)
        await nothingLeft([a!, b!])
      },
    )
  })

  describe('a WebSocket relayed to the owner', () => {
    const resume = (node: TestNode, hello: string) => RawWebSocket.open(node.base, hello)

    const frames: [string, string | Buffer, boolean][] = [
      ['a text frame that is not JSON', '[5,1,"e",["a"],0', false],
      ['a binary frame that is garbage', Buffer.from([0, 0, 0, 9, 1, 2, 3]), true],
      ['a binary frame whose header is fine but attachments missing', binaryEvent(), true],
      ['a HELLO mid-session', '[8,{}]', false],
      ['a text frame that is not UTF-8', Buffer.from([0x5b, 0x35, 0xff, 0x5d]), false],
      ['two packets in one message', '[3]\n[4,0]', false],
      ['a text frame past maxPayload', `[5,1,"e",["${'x'.repeat(MAX_PAYLOAD)}"],0]`, false],
      ['a binary frame past maxPayload', Buffer.alloc(MAX_PAYLOAD + 1), true],
      ['a lying ACK', '[4,9007199254740991]', false],
    ]

    it.each(frames)('%s: ends (or keeps) the session as on its owner', async (_what, frame, binary) => {
      const [a, b] = await cluster()
      const outcome = async (target: Watched) => {
        const first = await honest('websocket', a!.node)
        first.close()
        const raw = await resume(target.node, `[8,{"sid":"${first.sid}","ack":0}]`)
        const open = await raw.first()
        expect(open).toMatchObject({ type: PacketType.OPEN, recovered: true })
        raw.ws.send(frame, { binary })
        const code = await Promise.race([
          raw.closed,
          raw.answers().then(async (ok): Promise<number | 'lives'> => (ok ? 'lives' : raw.closed)),
        ])
        await until(() => a!.reasons.has(first.id) || code === 'lives', 2000, 'the session’s fate')
        const close = raw.packets.find((p) => p.type === PacketType.CLOSE)
        const fate = a!.reasons.get(first.id) ?? 'lives'
        await goodbye(raw, a!, first.id)
        return { code, close, fate }
      }
      const direct = await outcome(a!)
      expect(await outcome(b!)).toEqual(direct)
      await nothingLeft([a!, b!])
    })

    it('a frame that breaks RFC 6455 (a reserved opcode): 1002, and the session ends as on its owner', async () => {
      const [a, b] = await cluster()
      const outcome = async (target: Watched) => {
        const first = await honest('websocket', a!.node)
        first.close()
        const socket = await rawSocket(target.node)
        let seen = Buffer.alloc(0)
        socket.on('data', (chunk: Buffer) => {
          seen = Buffer.concat([seen, chunk])
        })
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
        socket.write(upgradeHead(target.node))
        await until(() => seen.includes('\r\n\r\n'), 2000, 'the 101')
        socket.write(frameOf(1, Buffer.from(`[8,{"sid":"${first.sid}","ack":0}]`)))
        await until(() => seen.includes('"recovered":true'), 2000, 'the OPEN')
        // Opcode 3 is reserved (RFC 6455 5.2).
        socket.write(frameOf(3, Buffer.from('x')))
        await until(() => a!.reasons.has(first.id), 2000, 'the session to end on its owner')
        // ws's close frame to the client: 1002.
        await until(() => seen.includes(Buffer.from([0x88, 0x02, 0x03, 0xea])), 2000, 'close 1002')
        socket.destroy()
        await closed
        const resumed = await rawConnect('polling', a!.node.base, { sid: first.sid, ack: 0 }).catch(
          (e: unknown) => e,
        )
        return { fate: a!.reasons.get(first.id), close: resumed instanceof Closed ? resumed.packet : resumed }
      }
      const direct = await outcome(a!)
      expect(direct).toMatchObject({ fate: 'invalid packet', close: { reason: 'invalid packet' } })
      expect(await outcome(b!)).toEqual(direct)
      await nothingLeft([a!, b!])
    })

    it('headers that fit on the owner but not once forwarded: told to try again, never a new session', async () => {
      const [a, b] = await cluster()
      const first = await honest('websocket', a!.node)
      first.close()
      const seen: string[] = []
      // Around Node's limit on headers (16 KiB): the node that relays adds a few of its own.
      for (let size = 16_000; size <= 16_256; size += 8) {
        const headers = { cookie: 'x'.repeat(size) }
        const resumed = await rawConnect(
          'websocket',
          b!.node.base,
          { sid: first.sid, ack: 0 },
          { headers },
        ).then(
          (client) => {
            client.close()
            return client.sid === first.sid && client.open.recovered ? 'resumed' : 'new session'
          },
          (err: unknown) =>
            err instanceof Refused ? `${err.code}${err.status ? ` ${err.status}` : ''}` : String(err),
        )
        if (seen.at(-1) !== resumed) seen.push(resumed)
        await until(() => a!.node.app.parley.sockets.get(first.id)?.transport === null, 2000, 'detached')
      }
      // Resumed while it fits, then told to try again, then refused by the node itself (431).
      expect(seen).toEqual(['resumed', 'PARLEY_SERVER_SHUTTING_DOWN', 'HTTP 431'])
      expect(b!.node.app.parley.unreachableOwnerCount).toBe(0)
      expect(b!.node.sockets).toEqual([])
      const last = await resume(a!.node, `[8,{"sid":"${first.sid}","ack":0}]`)
      expect(await last.first()).toMatchObject({ type: PacketType.OPEN, recovered: true })
      await goodbye(last, a!, first.id)
      await nothingLeft([a!, b!])
    })

    it('passes on what the owner may send: multi-byte text up to maxPayload bytes', async () => {
      const [a, b] = await cluster()
      const first = await honest('websocket', a!.node)
      first.close()
      const raw = await resume(b!.node, `[8,{"sid":"${first.sid}","ack":0}]`)
      expect(await raw.first()).toMatchObject({ type: PacketType.OPEN, recovered: true })
      // 3 bytes in UTF-8 for each code unit: the packet a few bytes under maxPayload, three times
      // as many bytes as characters (the relay counts bytes too, with room for an owner of an
      // earlier version that counted characters).
      const text = '€'.repeat(Math.floor((MAX_PAYLOAD - 30) / 3))
      a!.node.app.parley.sockets.get(first.id)!.emit('news', text)
      await until(() => raw.packets.length === 2 || !raw.isOpen, 2000, 'the event')
      expect(raw.packets[1]).toMatchObject({ type: PacketType.EVENT, args: [text] })
      expect(a!.reasons.size).toBe(0)
      await goodbye(raw, a!, first.id)
      await nothingLeft([a!, b!])
    })

    it('a flood of pings: cut as on the owner (ws’s bound on pongs owed), the session kept', async () => {
      const [a, b] = await cluster()
      const outcome = async (target: Watched) => {
        const first = await honest('websocket', a!.node)
        first.close()
        const raw = await resume(target.node, `[8,{"sid":"${first.sid}","ack":0}]`)
        expect(await raw.first()).toMatchObject({ type: PacketType.OPEN, recovered: true })
        for (let i = 0; i < 1000; i++) raw.ws.ping(Buffer.alloc(125))
        const code = await within(raw.closed, 2000, 'the close')
        await until(() => a!.node.app.parley.sockets.get(first.id)?.transport === null, 2000, 'detached')
        const again = await resume(a!.node, `[8,{"sid":"${first.sid}","ack":0}]`)
        const recovered = (await again.first()).type === PacketType.OPEN && (await again.answers())
        await goodbye(again, a!, first.id)
        return { code, recovered, fate: a!.reasons.get(first.id) }
      }
      const direct = await outcome(a!)
      expect(direct).toEqual({ code: 1006, recovered: true, fate: 'client disconnect' })
      expect(await outcome(b!)).toEqual(direct)
      await nothingLeft([a!, b!])
    })

    it('a client that goes mid-relay, before or after the answer: the owner keeps the session', async () => {
      const [a, b] = await cluster()
      const first = await honest('websocket', a!.node)
      first.close()
      // Gone right after its HELLO, while the other node reaches the owner.
      const early = await resume(b!.node, `[8,{"sid":"${first.sid}","ack":0}]`)
      early.ws.terminate()
      // Gone with messages in flight.
      const late = await resume(b!.node, `[8,{"sid":"${first.sid}","ack":0}]`)
      expect(await late.first()).toMatchObject({ type: PacketType.OPEN, recovered: true })
      for (let i = 1; i <= 50; i++) late.ws.send(`[5,0,"probe",[${i}],${i}]`)
      late.ws.terminate()
      const again = await rawConnect('websocket', a!.node.base, { sid: first.sid, ack: 0 })
      suite.raws.push(again)
      expect(again.open.recovered).toBe(true)
      expect(await answers(again)).toBe(true)
      expect(a!.reasons.size).toBe(0)
      await nothingLeft([a!, b!])
    })
  })

  describe('a session that moves to the node its WebSocket resume reached', () => {
    const resume = (node: TestNode, hello: string) => RawWebSocket.open(node.base, hello)

    it.each([
      ['far past what the server sent', 1000],
      ['of the largest safe integer', Number.MAX_SAFE_INTEGER],
      ['just past what a claim skips to', 2 + 2 ** 32 + 1],
    ])(
      'with a lying ack %s: what the node sends then reaches the client, numbered in order',
      async (_what, ack) => {
        const [a, b] = await cluster(2, MOVING)
        const first = await honest('websocket', a!.node)
        const before = a!.node.app.parley.sockets.get(first.id)!
        before.emit('news', 1)
        before.emit('news', 2)
        await first.next((p) => p.type === PacketType.EVENT && p.seq === 2)
        first.close()
        const raw = await resume(b!.node, `[8,{"sid":"${first.sid}","ack":${ack}}]`)
        expect(await raw.first()).toMatchObject({ type: PacketType.OPEN, recovered: true })
        expect(a!.reasons.get(first.id)).toBe('server handoff')
        const socket = b!.node.app.parley.sockets.get(first.id)!
        socket.emit('news', 3)
        b!.node.app.parley.emit('news', 4)
        await until(() => raw.packets.length === 3, 2000, 'both events')
        const [three, four] = raw.packets.slice(1)
        expect([three, four]).toMatchObject([{ args: [3] }, { args: [4] }])
        const seqs = [three, four].map((p) => (p?.type === PacketType.EVENT ? p.seq : 0))
        expect(seqs.every(Number.isSafeInteger)).toBe(true)
        expect(seqs[1]).toBe(seqs[0]! + 1)
        expect(await raw.answers()).toBe(true)
        await goodbye(raw, b!, first.id)
        await nothingLeft([a!, b!])
      },
    )
  })

  describe('one session resumed twice at once, on two other nodes', () => {
    it.each([
      ['moves (handoff on)', MOVING],
      ['relays (handoff off)', SERVER],
    ])(
      'over WebSocket, when a resume %s: one node ends up with it, whole, and no new session opens',
      async (_what, server) => {
        const watched = await cluster(3, server)
        const [a, b, c] = watched
        const { first, hello } = await fiveSentThenLeft(a!.node, suite.raws)
        const raws = await Promise.all([
          RawWebSocket.open(b!.node.base, hello),
          RawWebSocket.open(c!.node.base, hello),
        ])
        // The one that kept the session has it whole: the replay of what its client had not
        // acknowledged, in order. The other was told to try again, or was replaced (MOVED), and
        // closed.
        const gone = await within(
          Promise.race(raws.map((raw, i) => raw.closed.then(() => i))),
          2000,
          'one of the two to close',
        )
        const other = raws[gone]!
        const kept = raws[1 - gone]!
        await replayed(kept, first.id, 'the replay', true)
        // The loser is told the session is moving, or was taken over by another node (the
        // store answered): never that the store could not be asked (second-resume.test.ts).
        const refused = {
          type: PacketType.ERROR,
          code: 'PARLEY_SERVER_SHUTTING_DOWN',
          message: expect.stringMatching(
            /^the session (is moving to|was taken over by) another node: try again$/,
          ),
        }
        const replaced = [
          { type: PacketType.OPEN, recovered: true },
          ...[3, 4, 5].map((seq) => ({ seq })),
          { type: PacketType.MOVED },
        ]
        expect(other.packets).toMatchObject(server.handoff === false ? replaced : [refused])
        // One node holds it, none opened a session of its own for either resume.
        const holders = watched.filter((w) => w.node.app.parley.sockets.has(first.id))
        expect(holders).toHaveLength(1)
        expect(watched.reduce((sum, w) => sum + w.node.app.parley.socketsCount, 0)).toBe(1)
        expect([b, c].map((w) => w!.node.sockets.length)).toEqual([0, 0])
        expect(await kept.answers()).toBe(true)
        await goodbye(kept, holders[0]!, first.id)
        await nothingLeft(watched)
      },
    )

    it('over WebSocket, when the later one reaches the old node once the first took the session over: told so, and no new session opens', async () => {
      const watched = await cluster(3, MOVING)
      const [a, b, c] = watched
      const { first, hello } = await fiveSentThenLeft(a!.node, suite.raws)
      // c looks the owner up (a, which holds the session), then stalls, as a loaded node may:
      // it goes on only once b's resume has taken the session over.
      const { looked, goOn } = stallOwnerLookUp(c!.node)
      const late = await RawWebSocket.open(c!.node.base, hello)
      await until(looked, 2000, 'c looking the owner up')
      const kept = await RawWebSocket.open(b!.node.base, hello)
      await replayed(kept, first.id, 'the replay on b', true)
      await until(() => !a!.node.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
      // c asks a for the session, which a no longer holds, and relays the resume there: a, which
      // handed the session to b, says so rather than open a new one.
      goOn()
      expect(await late.first()).toMatchObject({
        type: PacketType.ERROR,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the session was taken over by another node: try again',
      })
      await within(late.closed, 2000, 'the close')
      expect(watched.map((w) => w.node.app.parley.socketsCount)).toEqual([0, 1, 0])
      expect(await kept.answers()).toBe(true)
      await goodbye(kept, b!, first.id)
      await nothingLeft(watched)
    })
    it.each(['websocket', 'polling'] as const)(
      'when the later one (%s) reaches the old node once the session ended on the node that took it over: told how it ended, not to try again',
      async (medium) => {
        const watched = await cluster(3, MOVING)
        const [a, b, c] = watched
        const { first, hello } = await fiveSentThenLeft(a!.node, suite.raws)
        // c looks the owner up (a, which holds the session), then stalls until b's resume has
        // taken the session over and the session has ended there.
        const { looked, goOn } = stallOwnerLookUp(c!.node)
        const late = rawConnect(medium, c!.node.base, { sid: first.sid, ack: 2 }).then(
          () => 'opened',
          (err: unknown) => err,
        )
        await until(looked, 2000, 'c looking the owner up')
        const kept = await RawWebSocket.open(b!.node.base, hello)
        await replayed(kept, first.id, 'the replay on b')
        await until(() => !a!.node.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
        // The client leaves for good, on b: the session ends there, its CLOSE kept for every node.
        await goodbye(kept, b!, first.id)
        let ended: unknown
        await until(
          () => {
            void a!.node.adapter.endedSession(first.sid).then((found) => {
              ended = found
            })
            return ended !== undefined
          },
          3000,
          'the end, read on a',
        )
        // c relays the resume to a, which handed the session to b: the session is over there, and
        // the client hears so, where "taken over by another node: try again" would have it try
        // until its recovery window ran out.
        goOn()
        const answer = await within(late, 3000, 'the answer to the later resume')
        expect(answer).toBeInstanceOf(Closed)
        expect((answer as Closed).packet).toMatchObject({ reason: 'client disconnect' })
        expect(watched.map((w) => w.node.sockets.length)).toEqual([1, 0, 0])
        expect(watched.map((w) => w.node.app.parley.socketsCount)).toEqual([0, 0, 0])
        await nothingLeft(watched)
      },
    )
    it.each(['websocket', 'polling'] as const)(
      'when the later one (%s) found the session handed off and claims once the first took it over: told to try again, and its next try finds the session',
      async (medium) => {
        const watched = await cluster(3, MOVING)
        const [a, b, c] = watched
        const { first, hello } = await fiveSentThenLeft(a!.node, suite.raws)
        const bClaim = holdClaim(b!.node)
        const cClaim = holdClaim(c!.node)
        // b's resume asks a to hand the session off: from then on the owner record says it is
        // handed off, until b's claim runs.
        const kept = await RawWebSocket.open(b!.node.base, hello)
        await until(bClaim.entered, 2000, 'b claiming the session')
        // The later resume reaches c meanwhile: c finds the session handed off, and claims it.
        const later = rawConnect(medium, c!.node.base, { sid: first.sid, ack: 2 }).then(
          () => 'opened',
          (err: unknown) => err,
        )
        await until(cClaim.entered, 2000, 'c claiming the session')
        // b's claim runs first, and its takeover is over before c's claim runs: c finds
        // nothing left to claim.
        bClaim.open()
        await replayed(kept, first.id, 'the replay on b', true)
        await until(() => !a!.node.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
        cClaim.open()
        const refusal = await within(later, 3000, 'the answer to the later resume')
        expect(refusal).toBeInstanceOf(Refused)
        expect(refusal).toMatchObject({
          code: 'PARLEY_SERVER_SHUTTING_DOWN',
          message: 'PARLEY_SERVER_SHUTTING_DOWN: the session was taken over by another node: try again',
        })
        expect(c!.node.sockets).toHaveLength(0)
        expect(watched.map((w) => w.node.app.parley.socketsCount)).toEqual([0, 1, 0])
        // The client's next try at c is sent to b, where the session is, whole.
        const again = await rawConnect(medium, c!.node.base, { sid: first.sid, ack: 2 })
        suite.raws.push(again)
        expect(again.open).toMatchObject({ recovered: true, id: first.id })
        expect(await answers(again)).toBe(true)
        expect(watched.reduce((sum, w) => sum + w.node.sockets.length, 0)).toBe(1)
        await nothingLeft(watched)
      },
    )
    it('when the WebSocket one had the old node hand the session off, and claims once a polling one took it over: told to try again, and no new session opens', async () => {
      const watched = await cluster(3, MOVING)
      const [a, b, c] = watched
      const { first } = await fiveSentThenLeft(a!.node, suite.raws)
      const cClaim = holdClaim(c!.node)
      // c's WebSocket resume asks a to hand the session off, which a does, then waits at its claim.
      const asking = rawConnect('websocket', c!.node.base, { sid: first.sid, ack: 2 }).then(
        () => 'opened',
        (err: unknown) => err,
      )
      await until(cClaim.entered, 2000, 'c claiming the session')
      // A polling resume of the same session reaches b, which finds it handed off and claims it
      // first: the session is b's, whole.
      const kept = await rawConnect('polling', b!.node.base, { sid: first.sid, ack: 2 })
      suite.raws.push(kept)
      expect(kept.open).toMatchObject({ recovered: true, id: first.id })
      await until(() => !a!.node.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
      cClaim.open()
      const refusal = await within(asking, 3000, 'the answer to the WebSocket resume')
      expect(refusal).toBeInstanceOf(Refused)
      expect(refusal).toMatchObject({
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'PARLEY_SERVER_SHUTTING_DOWN: the session was taken over by another node: try again',
      })
      expect(c!.node.sockets).toHaveLength(0)
      expect(watched.map((w) => w.node.app.parley.socketsCount)).toEqual([0, 1, 0])
      expect(await answers(kept)).toBe(true)
      await nothingLeft(watched)
    })
    it.each(['websocket', 'polling'] as const)(
      'when the later one (%s) cannot reach the owner it found, which let the session go to the first: told to try again, and its next try finds the session',
      async (medium) => {
        const watched = await cluster(3, MOVING)
        const [a, b, c] = watched
        const { first, hello } = await fiveSentThenLeft(a!.node, suite.raws)
        // c looks the owner up (a), then stalls until b's resume has taken the session over; by
        // then a has gone (it exited after its drain, say): its address is one where nothing
        // answers, a port held here.
        const gone = await holdPort()
        const { looked, goOn } = stallOwnerLookUp(c!.node, (owner) =>
          typeof owner === 'object' ? { ...owner, url: `http://127.0.0.1:${gone.port}/parley` } : owner,
        )
        try {
          const late = rawConnect(medium, c!.node.base, { sid: first.sid, ack: 2 }).then(
            () => 'opened',
            (err: unknown) => err,
          )
          await until(looked, 2000, 'c looking the owner up')
          const kept = await RawWebSocket.open(b!.node.base, hello)
          await replayed(kept, first.id, 'the replay on b', true)
          await until(() => !a!.node.app.parley.sockets.has(first.id), 2000, 'a letting the session go')
          // c cannot reach a; the owner record names b by now: the session left a, and c,
          // finding nothing to claim, says it was taken over rather than open a new one.
          goOn()
          const refusal = await within(late, 3000, 'the answer to the later resume')
          expect(refusal).toBeInstanceOf(Refused)
          expect(refusal).toMatchObject({
            code: 'PARLEY_SERVER_SHUTTING_DOWN',
            message: 'PARLEY_SERVER_SHUTTING_DOWN: the session was taken over by another node: try again',
          })
          expect(c!.node.sockets).toHaveLength(0)
          expect(watched.map((w) => w.node.app.parley.socketsCount)).toEqual([0, 1, 0])
          const again = await rawConnect(medium, c!.node.base, { sid: first.sid, ack: 2 })
          suite.raws.push(again)
          expect(again.open).toMatchObject({ recovered: true, id: first.id })
          expect(await answers(again)).toBe(true)
          expect(watched.reduce((sum, w) => sum + w.node.sockets.length, 0)).toBe(1)
          await nothingLeft(watched)
        } finally {
          gone.release()
        }
      },
    )
  })

  describe('a resume naming a session of another node', () => {
    const hellos: [string, (sid: string) => string][] = [
      ['a negative ack', (sid) => `[8,{"sid":"${sid}","ack":-1}]`],
      ['a fractional ack', (sid) => `[8,{"sid":"${sid}","ack":1.5}]`],
      ['an unsafe ack', (sid) => `[8,{"sid":"${sid}","ack":9007199254740993}]`],
      ['an ack that is a string', (sid) => `[8,{"sid":"${sid}","ack":"1"}]`],
      ['a sid of the wrong alphabet', (sid) => `[8,{"sid":"${sid}!","ack":0}]`],
      ['a sid too long', (sid) => `[8,{"sid":"${sid.repeat(4)}","ack":0}]`],
    ]

    it.each(hellos)(
      'with %s, over HTTP: the owner’s refusal, and its session goes on',
      async (_what, hello) => {
        const [a, b] = await cluster()
        for (const kind of ['sse', 'polling'] as const) {
          const client = await honest(kind, a!.node)
          const direct = await post(`${a!.node.base}/${segment(kind)}?v=1`, hello(client.sid))
          const forwarded = await post(`${b!.node.base}/${segment(kind)}?v=1`, hello(client.sid))
          expect(forwarded).toEqual(direct)
          expect(direct.status).toBe(400)
          expect(await answers(client)).toBe(true)
        }
        await nothingLeft([a!, b!])
      },
    )

    it.each(hellos)(
      'with %s, over WebSocket: the owner’s refusal, and its session goes on',
      async (_what, hello) => {
        const [a, b] = await cluster()
        const client = await honest('websocket', a!.node)
        const outcome = async (target: Watched) => {
          const raw = await RawWebSocket.open(target.node.base, hello(client.sid))
          return { first: await raw.first(), code: await within(raw.closed, 2000, 'the close') }
        }
        const direct = await outcome(a!)
        expect(direct.first).toMatchObject({ type: PacketType.ERROR, seq: 0, ackId: 0 })
        expect(await outcome(b!)).toEqual(direct)
        expect(await answers(client)).toBe(true)
        await nothingLeft([a!, b!])
      },
    )
  })
})

/** Ends `raw`'s session, if it still lives, with a CLOSE: the session `id` of `owner` is gone after it. */
async function goodbye(raw: RawWebSocket, owner: Watched, id: string): Promise<void> {
  if (raw.isOpen) raw.ws.send('[1,"client disconnect","bye"]')
  await until(() => !owner.node.app.parley.sockets.has(id), 2000, 'the session to end')
  raw.ws.terminate()
}

/** A binary frame whose header names an attachment that the frame does not hold. */
function binaryEvent(): Buffer {
  const header = Buffer.from('[5,1,"file",[null],0,[[[0],0,0]]]')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  return Buffer.concat([length, header])
}

/** A POST of `body` to `url`: its status and its answer's code (none for a 204). */
function post(
  url: string,
  body: string | Buffer,
  chunked = false,
): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'text/plain' }
    if (!chunked) headers['content-length'] = String(Buffer.byteLength(body))
    const req = http.request(new URL(url), { method: 'POST', headers, agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...codeOf(text) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (chunked) {
      // In pieces, so that the limit is found while the body comes.
      const bytes = Buffer.from(body)
      for (let at = 0; at < bytes.length; at += 512) req.write(bytes.subarray(at, at + 512))
    } else req.write(body)
    req.end()
  })
}

/** A GET's status and code, without waiting for a held answer's body: its head is enough. */
function getHead(url: string): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(url), { agent: false }, (res) => {
      if (res.statusCode === 200) {
        req.destroy()
        resolve({ status: 200 })
        return
      }
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...codeOf(text) }))
    })
    req.on('error', reject)
  })
}

function codeOf(text: string): { code?: string } {
  try {
    const parsed = JSON.parse(text) as { code?: unknown }
    return typeof parsed.code === 'string' ? { code: parsed.code } : {}
  } catch {
    return {}
  }
}

async function rawSocket(node: TestNode): Promise<net.Socket> {
  const socket = net.connect(Number(new URL(node.base).port), '127.0.0.1')
  socket.on('error', () => {})
  await within(new Promise<void>((resolve) => socket.once('connect', () => resolve())), 2000, 'a connection')
  return socket
}

/** A POST of `body` to `url` with `headers`: its status, code, message and Access-Control-Allow-Origin. */
function exchange(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; code?: string; message?: string; allowOrigin?: string }> {
  return new Promise((resolve, reject) => {
    const all = {
      ...headers,
      'content-type': 'text/plain',
      'content-length': String(Buffer.byteLength(body)),
    }
    const req = http.request(new URL(url), { method: 'POST', headers: all, agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      res.on('end', () => {
        let message: string | undefined
        try {
          message = (JSON.parse(text) as { message?: string }).message
        } catch {
          // Not JSON: an answer from before the endpoints.
        }
        const allowOrigin = res.headers['access-control-allow-origin']
        resolve({
          status: res.statusCode ?? 0,
          ...codeOf(text),
          message,
          ...(allowOrigin && { allowOrigin }),
        })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

function postHead(node: TestNode, kind: HttpKind, sid: string, length: number): string {
  const path = `${new URL(node.base).pathname}/${segment(kind)}?v=1&sid=${sid}`
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n`
}

/** The head of a WebSocket upgrade to `node`, offering Parley's subprotocol. */
const upgradeHead = (node: TestNode): string => rawUpgradeHead(`${new URL(node.base).pathname}/ws?v=1`)

/** A client frame (FIN, `opcode`) of a payload under 126 bytes, masked with zeros. */
const frameOf = (opcode: number, payload: Buffer) =>
  Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload])

/** Timers alive in the process now. */
function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
}
