// A node (b) with a client of its own, which a draining node (a) hands a session to: the client
// of that session resumes on b, whose claim wins in Redis but answers slowly (held at a door, as
// a slow Redis would hold it), and b begins to drain meanwhile. b waits for that claim a share of
// its handoff.timeout, not the whole of it: its own session is handed on to c at once after, and
// the session it was claiming, taken over once the claim answers, joins b's drain and is handed
// on too. Both clients resume on c, `recovered: true`, each broadcast to their room once, in
// order. Waited for first, the slow claim used up b's whole timeout, and b handed on nothing:
// its own client got 'server shutdown' and started anew.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { adapterOf, toldTo } from './e2e-suite.js'
import { clientOnA, roomClient, takeoverSuite } from './takeover-scene.js'

describe.skipIf(skipRedisSuites())('a drain while its node still claims a session slowly', () => {
  const { scene } = takeoverSuite()

  it("hands on the node's own session without waiting out the claim, then the claimed session once it arrives", async () => {
    const held = await scene({ handoffTimeout: 6000 })
    const { a, b, c, broadcast } = held

    // b's own client, then the client of the session a hands off, on a.
    held.only('b')
    const own = roomClient(held)
    await until(() => own.client.connected && b.connections.length === 1, 3000, 'connected to b')
    const ownId = own.client.id
    const ownTold = toldTo(own.client)
    const { client, got, id, told } = await clientOnA(held, 'websocket')

    // b's claims win in Redis, then wait at a door until b's own session is on its way to the
    // store: past the moment b listed its sessions.
    const adapter = adapterOf(b)
    const claim = adapter.claimSession.bind(adapter)
    let won = false
    let open = () => {}
    const door = new Promise<void>((resolve) => {
      open = resolve
    })
    adapter.claimSession = async (...args: Parameters<typeof claim>) => {
      const answer = await claim(...args)
      won = true
      await door
      return answer
    }
    const handOff = adapter.handOff.bind(adapter)
    const ownSid = b.connections[0]!.session.sid
    adapter.handOff = (snapshot, ttl) => {
      if (snapshot.sid === ownSid) open()
      return handOff(snapshot, ttl)
    }

    // a drains; the resume reaches b, whose claim wins and waits.
    held.only('b')
    const aClosed = a.started.app.close()
    await until(() => won, 5000, "b's claim to win in Redis")
    broadcast()
    client.emit('up', 2)

    // b drains; every try from now on reaches c.
    held.only('c')
    const bClosed = b.started.app.close()
    const onC = (id: string | undefined) => c.restored.some((socket) => socket.id === id)
    await until(
      () => (own.client.connected && onC(ownId)) || ownTold.lost.length > 0,
      10_000,
      "b's own client on c",
    )
    await until(() => (client.connected && onC(id)) || told.lost.length > 0, 10_000, 'the client on c')
    expect(ownTold.lost).toEqual([])
    expect(told.lost).toEqual([])
    expect(own.client.recovered).toBe(true)
    expect(client.recovered).toBe(true)

    broadcast()
    client.emit('up', 3)
    await until(
      () => got.length >= 3 && own.got.length >= 3 && c.received.includes(3),
      3000,
      'the last broadcast and emit',
    )
    await within(Promise.all([aClosed, bClosed]), 10_000, 'a and b to close')

    expect(own.client.id).toBe(ownId)
    expect(client.id).toBe(id)
    expect(c.connections).toEqual([])
    // Taken over on b, then handed on from there.
    expect(b.restored.map((socket) => socket.id)).toEqual([id])
    expect(got).toEqual([1, 2, 3])
    expect(own.got).toEqual([1, 2, 3])
    expect([...a.received, ...b.received, ...c.received].sort((x, y) => x - y)).toEqual([1, 2, 3])
  }, 50_000)
})
