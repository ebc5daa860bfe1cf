// An adapter whose `addAll` is asynchronous (an application's own, over a network): a join still
// under way when the session ends must not put the ended socket's id into its rooms after the
// session left them. The test adapter's joins take `joinDelayMs` (cluster-adapter.ts).
import { connect, type Socket } from '@parley/client'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { type Started, startServer, until } from './helpers.js'

const JOIN_MS = 200

let started: Started | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await started?.app.close()
  started = undefined
})

/** One node on the test adapter, its joins slow; `setup` adds the application's listeners. */
async function slowNode(setup: (app: Started['app']) => void) {
  const cluster = new Cluster()
  cluster.joinDelayMs = JOIN_MS
  started = await startServer({ adapter: cluster.adapter('a') }, setup)
  const adapter = cluster.nodes.get('a')!
  /** Resolves once `count` slow joins of `id` are done. */
  const joinsDone = (id: string, count: number) =>
    until(() => cluster.slowJoins.filter((done) => done === id).length === count, 5000, `joins of ${id}`)
  return { adapter, joinsDone }
}

function client(): Socket {
  const c = connect(started!.base, { transports: ['websocket'], reconnection: false })
  clients.push(c)
  return c
}

describe('a join still under way when the session ends', () => {
  it('is left once done, when the application disconnects the socket at once', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.on('connection', (socket) => {
        ids.push(socket.id)
        void socket.join('room')
        socket.disconnect()
      })
    })
    client()
    await until(() => ids.length === 1, 5000, 'connection')
    const id = ids[0]!
    // Its own room at the handshake, then 'room', which lands after the session ended.
    await joinsDone(id, 2)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
    expect(await started!.app.parley.in('room').fetchSockets()).toEqual([])
  })

  it('is left once done, when the client leaves at once', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.on('connection', (socket) => {
        ids.push(socket.id)
        void socket.join(['room', 'other'])
      })
    })
    const c = client()
    await until(() => c.connected, 5000, 'connect')
    c.disconnect()
    await until(() => started!.app.parley.socketsCount === 0, 5000, 'the session ended')
    const id = ids[0]!
    await joinsDone(id, 2)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
  })

  it('is left once done, when a middleware joins and then refuses the socket', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.use(async (socket) => {
        ids.push(socket.id)
        void socket.join('room')
        throw Object.assign(new Error('not you'), { code: 'NOT_YOU' })
      })
    })
    const c = client()
    const refused = new Promise((resolve) => c.on('connect_error', resolve))
    await refused
    const id = ids[0]!
    await joinsDone(id, 1)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
  })
})
