// What the server tells its adapter about the sessions of this node and where the node listens:
// the facts a multi-node adapter publishes so that other nodes can forward requests here.
import { PacketType } from '@parley/protocol'
import type { AdapterFactory, LocalSockets } from '@parley/server'
import { MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { Refused, rawConnect } from './raw-client.js'

const opened = closedAfterEach()

/** A memory adapter that records the session hooks, and the node's own sockets view. */
function recording() {
  const calls: string[] = []
  let local: LocalSockets | undefined
  const factory: AdapterFactory = (sockets) => {
    local = sockets
    const adapter = new MemoryAdapter(sockets)
    return Object.assign(adapter, {
      sessionOpened: (sid: string) => {
        calls.push(`opened:${sid}`)
      },
      sessionClosed: (sid: string) => {
        calls.push(`closed:${sid}`)
      },
    })
  }
  return { calls, factory, local: () => local! }
}

describe('the adapter hears', () => {
  it("this node's URL once the server listens", async () => {
    const { factory, local } = recording()
    opened.started = await startServer({ adapter: factory })
    const { port } = opened.started.app.server.address() as { port: number }
    expect(local().url()).toBe(`http://127.0.0.1:${port}`)
  })

  it.each(['websocket', 'sse', 'polling'] as const)(
    'when a session opens, resumes and ends on this node, over %s',
    async (transport) => {
      const { calls, factory } = recording()
      opened.started = await startServer({ adapter: factory })
      const first = await rawConnect(transport, opened.started.base)
      opened.clients.push(first)
      expect(calls).toEqual([`opened:${first.sid}`])
      first.close()
      const again = await rawConnect(transport, opened.started.base, { sid: first.sid, ack: 0 })
      opened.clients.push(again)
      expect(again.open.recovered).toBe(true)
      expect(calls).toEqual([`opened:${first.sid}`, `opened:${first.sid}`])
      await again.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await until(() => calls.length === 3, 3000, 'the end')
      expect(calls[2]).toBe(`closed:${first.sid}`)
    },
  )
})

describe('the handshake', () => {
  it.each(['websocket', 'sse', 'polling'] as const)(
    "waits for the adapter's owner record before it answers, over %s",
    async (transport) => {
      const events: string[] = []
      const factory: AdapterFactory = (sockets) =>
        Object.assign(new MemoryAdapter(sockets), {
          sessionOpened: () =>
            new Promise<void>((resolve) =>
              setTimeout(() => {
                events.push('recorded')
                resolve()
              }, 150),
            ),
        })
      opened.started = await startServer({ adapter: factory })
      const client = await rawConnect(transport, opened.started.base)
      opened.clients.push(client)
      events.push('open')
      expect(events).toEqual(['recorded', 'open'])
    },
  )

  it('does not wait for a record that never comes longer than OWNER_RECORD_WAIT_MS', async () => {
    const factory: AdapterFactory = (sockets) =>
      Object.assign(new MemoryAdapter(sockets), { sessionOpened: () => new Promise<void>(() => {}) })
    opened.started = await startServer({ adapter: factory })
    const client = await rawConnect('sse', opened.started.base)
    opened.clients.push(client)
    expect(client.open.recovered).toBe(false)
  })
})

describe("the adapter's factory", () => {
  // A multi-node adapter may read what is queued for this node as it is made (messages of its
  // store's channel, say), before the server has anything of its own: the server is still being
  // constructed, and every session asked about is none of this node's.
  it('may ask about sessions before the server is made, and hears that none is here', async () => {
    const answers: unknown[] = []
    let handOff: Promise<boolean> | undefined
    const factory: AdapterFactory = (sockets) => {
      answers.push(sockets.get('x'), sockets.hasSession('s'), sockets.url(), sockets.claimed('s'))
      sockets.takenOver?.('s')
      handOff = sockets.handOff('s')
      return new MemoryAdapter(sockets)
    }
    opened.started = await startServer({ adapter: factory })
    expect(answers).toEqual([undefined, false, undefined, []])
    expect(await handOff).toBe(false)
    const client = await rawConnect('websocket', opened.started.base)
    opened.clients.push(client)
    expect(client.open.recovered).toBe(false)
  })
})

/**
 * A server whose adapter fails to put a socket into a room while `joins.fail` is set (the store
 * is away); `connections`: the sockets its application saw connect.
 */
async function startWithFailingJoins() {
  const joins = { fail: true }
  const connections: string[] = []
  opened.started = await startServer(
    {
      adapter: (sockets) => {
        const adapter = new MemoryAdapter(sockets)
        const addAll = adapter.addAll.bind(adapter)
        return Object.assign(adapter, {
          addAll: (id: string, rooms: Iterable<string>) =>
            joins.fail ? Promise.reject(new Error('the store is away')) : addAll(id, rooms),
        })
      },
    },
    (app) => {
      app.parley.on('connection', (socket) => {
        connections.push(socket.id)
      })
    },
  )
  return { joins, connections, server: opened.started }
}

describe('an adapter that fails to put a new socket into its own room', () => {
  it('fails that handshake and leaves nothing of it behind', async () => {
    const { joins, connections, server } = await startWithFailingJoins()
    await expect(rawConnect('websocket', server.base)).rejects.toMatchObject({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'PARLEY_SERVER_SHUTTING_DOWN: the handshake failed inside the server: try again',
    })
    expect(server.app.parley.socketsCount).toBe(0)
    expect(connections).toEqual([])
    joins.fail = false
    const raw = await rawConnect('websocket', server.base)
    opened.clients.push(raw)
    expect(server.app.parley.socketsCount).toBe(1)
  })

  it.each(['sse', 'polling'] as const)(
    'answers a handshake over %s with 503 PARLEY_SERVER_SHUTTING_DOWN, without the internal error, and keeps nothing',
    async (transport) => {
      const { joins, connections, server } = await startWithFailingJoins()
      const refused = await rawConnect(transport, server.base).catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(Refused)
      expect(refused).toMatchObject({ status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN' })
      expect((refused as Refused).message).not.toContain('the store is away')
      expect(server.app.parley.socketsCount).toBe(0)
      expect(connections).toEqual([])
      joins.fail = false
      const raw = await rawConnect(transport, server.base)
      opened.clients.push(raw)
      expect(server.app.parley.socketsCount).toBe(1)
    },
  )
})
