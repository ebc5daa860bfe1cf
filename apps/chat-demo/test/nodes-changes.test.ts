// Presence heals when the cluster's live nodes change (see `onNodesChange` in chat.ts) with any
// adapter that can tell of such changes: one of another copy of @parley/redis (a second version
// installed beside the demo's) is of another class, and must count all the same.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { NodesChange, NodesChangeListener } from '@parley/redis'
import { MemoryAdapter } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildChatApp } from '../src/app.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { connected } from './connected.js'

type Client = Socket<ServerEvents, ClientEvents>

describe('an adapter that tells of changes to the live nodes, of no class the chat knows', () => {
  const apps: FastifyInstance[] = []
  const clients: Client[] = []

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const app of apps.splice(0)) await app.close()
  })

  /** A chat server on 127.0.0.1 whose adapter is in memory, with `onNodesChange` beside it. */
  async function serverTellingChanges(): Promise<{ url: string; listeners: Set<NodesChangeListener> }> {
    const listeners = new Set<NodesChangeListener>()
    const app = await buildChatApp({
      adapter: (sockets) =>
        Object.assign(new MemoryAdapter(sockets), {
          onNodesChange(listener: NodesChangeListener): () => void {
            listeners.add(listener)
            return () => void listeners.delete(listener)
          },
        }),
    })
    apps.push(app)
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, listeners }
  }

  async function person(nickname: string, url: string): Promise<Client> {
    const client: Client = connect(url, { auth: { nickname }, transports: ['websocket'] })
    clients.push(client)
    return connected(client)
  }

  const join = (client: Client, room: string) =>
    new Promise<JoinReply>((resolve) => client.emit('join', { room }, resolve))

  it("has the room's people list sent again when a node leaves, and is let go at close", async () => {
    const { url, listeners } = await serverTellingChanges()
    expect(listeners.size).toBe(1)
    const ona = await person('ona', url)
    expect(await join(ona, 'lobby')).toMatchObject({ ok: true, people: ['ona'] })
    const heard: { room: string; people: string[] }[] = []
    ona.on('presence', ({ room, people }) => heard.push({ room, people }))

    const change: NodesChange = { nodes: [], joined: [], left: [], lapsed: ['node-gone'] }
    for (const listener of listeners) listener(change)
    await expect.poll(() => heard, { timeout: 5000 }).toEqual([{ room: 'lobby', people: ['ona'] }])

    await apps.splice(0).at(0)?.close()
    expect(listeners.size).toBe(0)
  })
})
