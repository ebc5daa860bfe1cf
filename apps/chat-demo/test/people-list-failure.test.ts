// A people list whose cluster query rejects: an adapter of the application's may fail where
// @parley/redis never does. One nobody awaits (someone left; the live nodes changed) is the chat's
// to log, once, at warn; left unhandled it would end the process. A join's stands all the same.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { within } from '../../../packages/server/test/helpers.js'
import { unheard } from '../../../test/support/unheard.js'
import { buildChatApp } from '../src/app.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { BreakingAdapter } from './breaking-adapter.js'
import { connected } from './connected.js'

type Client = Socket<ServerEvents, ClientEvents>

const LINE = 'chat: the people list of a room could not be sent: the cluster did not answer'

describe('a people list whose cluster query rejects', () => {
  const apps: FastifyInstance[] = []
  const clients: Client[] = []

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const app of apps.splice(0)) await app.close()
  })

  /** A chat server on 127.0.0.1 on a `BreakingAdapter`, Ona and Pim in the lobby; its warnings. */
  async function lobbyOfTwo() {
    let adapter: BreakingAdapter | undefined
    const app = await buildChatApp({
      adapter: (sockets) => {
        adapter = new BreakingAdapter(sockets)
        return adapter
      },
    })
    apps.push(app)
    const warned: string[] = []
    app.log.warn = ((_: unknown, message?: string) =>
      void warned.push(String(message))) as typeof app.log.warn
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const person = async (nickname: string) => {
      const client: Client = connect(url, { auth: { nickname }, transports: ['websocket'] })
      clients.push(client)
      await connected(client)
      const joined = await new Promise<JoinReply>((resolve) =>
        client.emit('join', { room: 'lobby' }, resolve),
      )
      expect(joined).toMatchObject({ ok: true })
      return client
    }
    const [ona, pim] = [await person('ona'), await person('pim')]
    if (!adapter) throw new Error('the server made no adapter')
    return { adapter, warned, ona, pim }
  }

  it('on a join answers with the history and a list flagged unavailable, logged once at warn', async () => {
    const { adapter, warned, ona } = await lobbyOfTwo()
    const join = (room: string) =>
      within(
        new Promise<JoinReply>((resolve) => ona.emit('join', { room }, resolve)),
        5000,
        `the answer to a join of ${room}`,
      )
    const said = await new Promise<unknown>((resolve) =>
      ona.emit('chat', { room: 'lobby', text: 'before the break' }, resolve),
    )
    expect(said).toMatchObject({ ok: true })
    adapter.broken = true
    const flagged = { ok: true, people: ['ona'], peopleUnavailable: true }
    const left = await unheard(async () => {
      // Changes of room: the socket is in the new room before the lists are asked for, the one
      // it left and the one it came to: each logged, the answer's own not again.
      expect(await join('help')).toMatchObject({ ...flagged, room: 'help', history: [] })
      expect(warned).toEqual([LINE, LINE])
      const back = await join('lobby')
      expect(back).toMatchObject({ ...flagged, room: 'lobby' })
      if (!('history' in back)) throw new Error('the join was refused')
      expect(back.history.map((m) => m.text)).toEqual(['before the break'])
      expect(warned).toHaveLength(4)
      // A join of the room it is in already asks for no list but the answer's: logged once.
      expect(await join('lobby')).toMatchObject({ ...flagged, room: 'lobby' })
      expect(warned).toHaveLength(5)
    }, 300)
    expect(left).toEqual([])
    expect(new Set(warned)).toEqual(new Set([LINE]))
    adapter.broken = false
    const mended = await join('lobby')
    expect(mended).toMatchObject({ ok: true, people: ['ona', 'pim'] })
    expect(mended).not.toHaveProperty('peopleUnavailable')
  })

  it('when someone leaves is logged once at warn, and nothing is left unhandled', async () => {
    const { adapter, warned, pim } = await lobbyOfTwo()
    const left = await unheard(async () => {
      adapter.broken = true
      pim.disconnect()
      await expect.poll(() => warned, { timeout: 5000 }).toEqual([LINE])
    }, 300)
    expect(left).toEqual([])
    expect(warned).toEqual([LINE])
  })

  it('when a node left is logged once at warn, and the next change lists the room again', async () => {
    const { adapter, warned, ona } = await lobbyOfTwo()
    const heard: string[][] = []
    ona.on('presence', ({ people }) => heard.push(people))
    const tell = () => {
      for (const listener of adapter.listeners)
        listener({ nodes: [], joined: [], left: ['gone'], lapsed: [] })
    }
    const left = await unheard(async () => {
      adapter.broken = true
      tell()
      await expect.poll(() => warned, { timeout: 5000 }).toEqual([LINE])
    }, 300)
    expect(left).toEqual([])
    expect(warned).toEqual([LINE])
    adapter.broken = false
    tell()
    await expect.poll(() => heard, { timeout: 5000 }).toEqual([['ona', 'pim']])
  })
})
