// A node that gets a request for a session of another node asks its adapter where that session
// lives before it forwards the request. That lookup (a round trip to a store) may take longer
// than the application's Fastify handlerTimeout on that node: the request must still reach the
// owner, and the client go on as if nothing happened. A lookup that never settles is bounded.
import { connect, type Socket } from '@parley/client'
import { type OpenPacket, PacketType } from '@parley/protocol'
import type { AdapterFactory, ParleyServerOptions, ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, sleep, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { heldBody, splitFetch } from './split-fetch.js'

const nodes: Started[] = []
const clients: Socket[] = []
const raws: RawClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  for (const raw of raws.splice(0)) raw.close()
  for (const node of nodes.splice(0)) await closeApp(node.app)
})

/** Owner lookups held until the test opens the gate: a store that answers late. */
class LookupGate {
  #open = true
  #waiting: (() => void)[] = []
  /** Lookups asked while the gate was closed. */
  held = 0

  close(): void {
    this.#open = false
  }

  open(): void {
    this.#open = true
    for (const go of this.#waiting.splice(0)) go()
  }

  /** Settles once the gate is open. */
  pass(): Promise<void> {
    if (this.#open) return Promise.resolve()
    this.held++
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  /** `directory`'s adapter for node `name`, its `sessionOwner` held by this gate. */
  adapter(directory: Directory, name: string): AdapterFactory {
    return (sockets) => {
      const adapter = directory.adapter(name)(sockets)
      const ask = adapter.sessionOwner!.bind(adapter)
      const sessionOwner = async (sid: string) => {
        await this.pass()
        return ask(sid)
      }
      return Object.assign(adapter, { sessionOwner })
    }
  }
}

/**
 * The owner, `a`, and node `b` with `handlerTimeout: 100` and late lookups; a real client whose
 * handshake goes to `a` and whose every other request goes to `b`, which forwards it to `a`.
 */
async function twoNodes(transport: 'polling' | 'sse', gate: LookupGate, bOptions = {}) {
  const directory = new Directory()
  const up: number[] = []
  const sockets: ServerSocket[] = []
  const owner = await startServer({ adapter: directory.adapter('a') }, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('up', (n: number) => void up.push(n))
    })
  })
  nodes.push(owner)
  const other = await startServer({ adapter: gate.adapter(directory, 'b'), ...bOptions }, undefined, {
    handlerTimeout: 100,
  })
  nodes.push(other)
  const sent: string[] = []
  const forwarding = splitFetch(() => other.base, sent)
  const client = connect(owner.base, { transports: [transport], fetch: forwarding, reconnectionDelay: 50 })
  clients.push(client)
  const errors: string[] = []
  client.on('transport_error', (_name, error) => void errors.push(`${error.code} ${error.message}`))
  const news: string[] = []
  client.on('news', (text: string) => void news.push(text))
  return { owner, other, client, sent, errors, news, up, sockets, directory }
}

describe.each(['polling', 'sse'] as const)('an owner lookup slower than handlerTimeout (%s)', (transport) => {
  it('still forwards the GET and the POST: the client goes on, never resumed, nothing lost', async () => {
    const gate = new LookupGate()
    const { client, sent, errors, news, up, sockets } = await twoNodes(transport, gate)
    await until(() => client.connected, 3000, 'connect')
    expect(sent).toContain('GET forwarded')

    gate.close()
    client.emit('up', 1)
    // A poll comes back, and the next one asks again; an SSE stream stays with the owner.
    sockets[0]!.emit('news', 'one')
    await until(() => gate.held >= (transport === 'polling' ? 2 : 1), 3000, 'the held lookups')
    await sleep(300)
    gate.open()

    await until(() => up.length === 1, 3000, "the POST's packet")
    sockets[0]!.emit('news', 'two')
    await until(() => news.length === 2, 3000, 'the news')
    expect({ up, news, errors }).toEqual({ up: [1], news: ['one', 'two'], errors: [] })
    // One handshake, never a resume: no request was cut on the way to the owner.
    expect(sent.filter((what) => what === 'handshake')).toEqual(['handshake'])
    expect(client.recovered).toBe(false)
  })
})

describe.each([
  ['with handlerTimeout', { handlerTimeout: 100 }],
  ['without handlerTimeout', {}],
] as const)('an owner lookup that never settles (%s)', (_name, fastify) => {
  it.each(['GET', 'POST'] as const)(
    'answers a %s within handshakeTimeout as for a failed lookup: 400 PARLEY_UNKNOWN_SESSION',
    async (method) => {
      const directory = new Directory()
      const gate = new LookupGate()
      const owner = await startServer({ adapter: directory.adapter('a') })
      nodes.push(owner)
      const warnings: string[] = []
      const logger = {
        level: 'warn',
        stream: { write: (line: string) => void warnings.push(JSON.parse(line).msg) },
      }
      const other = await startServer(
        { adapter: gate.adapter(directory, 'b'), handshakeTimeout: 300 },
        undefined,
        {
          ...fastify,
          logger,
        },
      )
      nodes.push(other)
      const first = await rawConnect('polling', owner.base)
      first.close()
      gate.close()

      const answer = await fetch(`${other.base}/poll?v=1&sid=${first.sid}`, {
        method,
        body: method === 'POST' ? '[3]' : undefined,
        signal: AbortSignal.timeout(5000),
      })
      expect({ status: answer.status, body: await answer.json() }).toEqual({
        status: 400,
        body: { code: 'PARLEY_UNKNOWN_SESSION', message: 'no such session' },
      })
      expect(gate.held).toBe(1)
      await other.app.close()
      expect(warnings.join('\n')).toMatch(/the adapter could not tell where a session lives, 1 time/)
    },
  )
})

describe('a request taken from Fastify when its handlerTimeout ran out during the lookup', () => {
  it("is answered without the onSend hooks' headers, but with those an onRequest hook set", async () => {
    const directory = new Directory()
    const gate = new LookupGate()
    const owner = await startServer({ adapter: directory.adapter('a') })
    nodes.push(owner)
    const other = await startServer(
      { adapter: gate.adapter(directory, 'b'), handshakeTimeout: 300 },
      (app) => {
        // An application's security headers: one set as the request comes, one as it is answered.
        app.addHook('onRequest', async (_request, reply) => {
          reply.header('x-frame-options', 'DENY')
        })
        app.addHook('onSend', async (_request, reply) => {
          reply.header('x-content-type-options', 'nosniff')
        })
      },
      { handlerTimeout: 100 },
    )
    nodes.push(other)
    const first = await rawConnect('polling', owner.base)
    first.close()
    gate.close()
    const answer = await fetch(`${other.base}/poll?v=1&sid=${first.sid}`, {
      signal: AbortSignal.timeout(5000),
    })
    expect({ status: answer.status, body: await answer.json() }).toEqual({
      status: 400,
      body: { code: 'PARLEY_UNKNOWN_SESSION', message: 'no such session' },
    })
    // Fastify runs no hook for a reply taken from it (see docs/scaling.md, Forwarding).
    expect(answer.headers.get('x-frame-options')).toBe('DENY')
    expect(answer.headers.get('x-content-type-options')).toBeNull()
  })
})

/**
 * The requests of `app` whose Fastify handlerTimeout ran out (method and path), as Fastify tells
 * its request's signal before it answers.
 */
function handlerTimeouts(app: FastifyInstance): string[] {
  const ran: string[] = []
  app.addHook('onRequest', async (request) => {
    const signal = request.signal
    signal.addEventListener('abort', () => {
      const code = (signal.reason as { code?: unknown } | undefined)?.code
      if (code === 'FST_ERR_HANDLER_TIMEOUT') ran.push(`${request.method} ${request.url.split('?')[0]}`)
    })
  })
  return ran
}

// Fastify counts a request's handlerTimeout until its handler answers, hijacks the reply (an
// upgrade, taken by @fastify/websocket) or the request's body has been read (Node's request
// closes then, and Fastify clears its timer). A forwarding node looks an owner up before it reads
// a GET's (empty) body or an upstream POST's, but after a handshake POST's (its HELLO names the
// session): only the first can be cut, and only there is the reply taken from Fastify.
describe('which owner lookups a handlerTimeout can cut: a lookup held past it on node b', () => {
  /**
   * The owner, `a`, with a session; node `b` with `handlerTimeout: 100` and a closed gate. `both`:
   * options of both nodes.
   */
  async function setUp(both: ParleyServerOptions = {}) {
    const directory = new Directory()
    const gate = new LookupGate()
    const up: number[] = []
    const sockets: ServerSocket[] = []
    const owner = await startServer({ ...both, adapter: directory.adapter('a') }, (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.on('up', (n: number) => void up.push(n))
      })
    })
    nodes.push(owner)
    let ran: string[] = []
    const other = await startServer(
      { ...both, adapter: gate.adapter(directory, 'b') },
      (app) => {
        ran = handlerTimeouts(app)
      },
      { handlerTimeout: 100 },
    )
    nodes.push(other)
    // Its GETs are the test's to send.
    const first = await rawConnect('polling', owner.base, {}, { firstGetAfter: new Promise(() => {}) })
    raws.push(first)
    gate.close()
    return { owner, other, gate, first, up, sockets, ran }
  }

  it("a poll: the timeout runs out during the lookup, and the poll is the owner's all the same", async () => {
    const { other, gate, first, sockets, ran } = await setUp()
    const answer = fetch(`${other.base}/poll?v=1&sid=${first.sid}`, { signal: AbortSignal.timeout(5000) })
    await until(() => ran.length === 1, 3000, "b's handlerTimeout running out during the lookup")
    await until(() => gate.held === 1, 3000, 'the lookup')
    gate.open()
    // The owner holds the poll until it has something to send.
    sockets[0]!.emit('news', 'one')
    const poll = await within(answer, 5000, "the owner's answer to the poll")
    expect({ status: poll.status, ran }).toEqual({ status: 200, ran: ['GET /parley/poll'] })
    expect(await poll.text()).toContain('"news",["one"]')
  })

  it('an upstream POST whose body is still coming: the same, and its packet reaches the owner', async () => {
    const { other, gate, first, up, ran } = await setUp()
    // The rest of the body comes once the gate opens: the lookup goes first, the body after it.
    let opened: () => void = () => {}
    const open = new Promise<void>((resolve) => {
      opened = resolve
    })
    const body = JSON.stringify([PacketType.EVENT, 1, 'up', [1], 0])
    const answer = fetch(`${other.base}/poll?v=1&sid=${first.sid}`, {
      ...heldBody({ method: 'POST', body }, () => open),
      signal: AbortSignal.timeout(5000),
    })
    await until(() => ran.length === 1, 3000, "b's handlerTimeout running out during the lookup")
    await until(() => gate.held === 1, 3000, 'the lookup')
    gate.open()
    opened()
    const post = await within(answer, 5000, "the owner's answer to the POST")
    expect({ status: post.status, up, ran }).toEqual({ status: 204, up: [1], ran: ['POST /parley/poll'] })
  })

  it("an upstream POST past maxPayload, never read: the same, and the owner's 413 ends the session", async () => {
    const { other, gate, first, sockets, ran } = await setUp({ maxPayload: 256 })
    const answer = fetch(`${other.base}/poll?v=1&sid=${first.sid}`, {
      method: 'POST',
      body: 'x'.repeat(257),
      signal: AbortSignal.timeout(5000),
    })
    await until(() => ran.length === 1, 3000, "b's handlerTimeout running out during the lookup")
    await until(() => gate.held === 1, 3000, 'the lookup')
    gate.open()
    const post = await within(answer, 5000, "the owner's answer to the POST")
    expect({ status: post.status, body: await post.json(), ran }).toEqual({
      status: 413,
      body: { code: 'PARLEY_PAYLOAD_TOO_LARGE', message: 'the body is larger than maxPayload (256 bytes)' },
      ran: ['POST /parley/poll'],
    })
    await until(() => !sockets[0]!.connected, 3000, 'the session ended on its owner')
  })

  it.each(['polling', 'websocket'] as const)(
    'a resume (%s): its lookup comes after the handshake is read or upgraded, where the timeout no longer counts',
    async (transport) => {
      const { other, gate, first, ran } = await setUp()
      first.close()
      const resume = rawConnect(transport, other.base, { sid: first.sid, ack: 0 }, { answerWithinMs: 5000 })
      await until(() => gate.held === 1, 3000, 'the lookup')
      // Well past b's handlerTimeout: had it still counted, the resume would be answered by now.
      await sleep(300)
      gate.open()
      const resumed = await within(resume, 5000, 'the resume, on its owner')
      raws.push(resumed)
      expect((resumed.open as OpenPacket).sid).toBe(first.sid)
      expect(ran).toEqual([])
    },
  )
})
