// An adapter of the application's whose promises reject (its store went away for a moment):
// every session that comes meanwhile fails the same way, and the server logs one line per
// burst of each kind, not one per session. The built-in adapters never reject these calls.
import { type AdapterFactory, MemoryAdapter } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

let started: Started | undefined
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await started?.app.close()
  started = undefined
})

const storeAway = () => Promise.reject(new Error('the store went away'))

/** A memory adapter with `extra` calls (which may reject), and a server logging at warn into `logs`. */
async function serverWith(extra: (adapter: MemoryAdapter) => object) {
  const logs: { msg: string; count?: number; total?: number; err?: { message: string } }[] = []
  const adapter: AdapterFactory = (sockets) => {
    const memory = new MemoryAdapter(sockets)
    return Object.assign(memory, extra(memory))
  }
  const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  const handoff = { timeout: 500, retrySpread: 0 }
  started = await startServer({ adapter, handoff }, undefined, { logger, return503OnClosing: false })
  /** The lines whose message holds `text`, as `[count, total]`. */
  const counts = (text: string) => logs.filter(({ msg }) => msg.includes(text)).map((l) => [l.count, l.total])
  return { started, logs, counts }
}

async function connectThree(base: string, sid?: (i: number) => string) {
  for (let i = 0; i < 3; i++) {
    const hello = sid ? { sid: sid(i), ack: 0 } : {}
    clients.push(await rawConnect('websocket', base, hello))
  }
}

describe('an adapter that rejects', () => {
  it('logs the owner records it could not write once per burst, with the first error', async () => {
    const { started, logs, counts } = await serverWith(() => ({ sessionOpened: storeAway }))
    await connectThree(started.base)
    const text = 'could not record the owner of'
    expect(counts(text)).toEqual([[1, 1]])
    expect(logs.find(({ msg }) => msg.includes(text))?.err?.message).toBe('the store went away')
    await started.app.close()
    expect(counts(text)).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  it('logs the claims it could not make once per burst; each client gets a new session', async () => {
    const { started, counts } = await serverWith(() => ({ claimSession: storeAway }))
    await connectThree(started.base, (i) => `gone-session-${i}`)
    expect(clients.map((c) => c.open.recovered)).toEqual([false, false, false])
    expect(counts('could not claim')).toEqual([[1, 1]])
    await started.app.close()
    expect(counts('could not claim')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  it('logs the sessions it could not ask another node for once per burst', async () => {
    const { started, counts } = await serverWith(() => ({
      // Another node holds every session, at an address where nothing listens.
      sessionOwner: () => ({ node: 'other', url: 'http://127.0.0.1:1' }),
      claimSession: async () => null,
      handOff: async () => false,
      requestHandOff: storeAway,
    }))
    await connectThree(started.base, (i) => `elsewhere-${i}`)
    expect(counts('could not ask for')).toEqual([[1, 1]])
    await started.app.close()
    expect(counts('could not ask for')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  /**
   * Calls a drain with handoff makes of an adapter whose store takes every session (`stored`
   * counts them) and that another node is alive to claim them, though none does.
   */
  function storing(more: object) {
    const stored: string[] = []
    const calls = {
      handOff: async ({ sid }: { sid: string }) => {
        stored.push(sid)
        return true
      },
      claimSession: async () => null,
      otherNodes: () => 1,
      ...more,
    }
    return { stored, calls }
  }

  it('logs the snapshots it could not withdraw once per burst', async () => {
    const { stored, calls } = storing({ withdrawHandOff: storeAway })
    const { started, counts } = await serverWith(() => calls)
    await connectThree(started.base)
    const draining = started.app.parley.drain()
    await until(() => stored.length === 3, 3000, 'the snapshots')
    // The application ends them while they are handed off: their snapshots must be taken back.
    for (const socket of started.app.parley.sockets.values()) socket.disconnect()
    await draining
    expect(counts('could not be withdrawn')).toEqual([[1, 1]])
    await started.app.close()
    expect(counts('could not be withdrawn')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  it('logs the resumes it could not send on to another node once per burst', async () => {
    const { stored, calls } = storing({ anotherNode: storeAway })
    const { started, counts } = await serverWith(() => calls)
    await connectThree(started.base)
    const sids = clients.map((c) => c.sid)
    const draining = started.app.parley.drain()
    await until(() => stored.length === 3, 3000, 'the snapshots')
    // Their clients come back to this node, which cannot name another: it answers them itself.
    for (const sid of sids) {
      const answer = await rawConnect('websocket', started.base, { sid, ack: 0 }).catch((e: unknown) => e)
      expect(answer).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
    }
    expect(counts('could not name another node')).toEqual([[1, 1]])
    await draining
    await started.app.close()
    expect(counts('could not name another node')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })
})
