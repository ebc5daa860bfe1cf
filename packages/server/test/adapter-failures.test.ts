// An adapter of the application's whose promises reject (its store went away for a moment):
// every session that comes meanwhile fails the same way, and the server logs one line per
// burst of each kind, not one per session. The built-in adapters never reject these calls.
import { connect } from '@parley/client'
import type { ParleyError, TransportName } from '@parley/protocol'
import {
  type AdapterFactory,
  MemoryAdapter,
  type ParleyServerOptions,
  type SessionSnapshot,
} from '@parley/server'
import { describe, expect, it, vi } from 'vitest'
import { Session } from '../src/session.js'
import { closedAfterEach } from './closed-after-each.js'
import { sleep, startServer, until } from './helpers.js'
import { Closed, type RawClient, Refused, rawConnect } from './raw-client.js'
import { Registry, sampleOf } from './registry.js'

// Closing the server closes its clients' connections too; the real clients here are refused
// or disconnected by the server, and so stop.
const opened = closedAfterEach()

const storeAway = () => Promise.reject(new Error('the store went away'))

/** A memory adapter with `extra` calls (which may reject), and a server logging at warn into `logs`. */
async function serverWith(
  extra: (adapter: MemoryAdapter) => object,
  setup?: Parameters<typeof startServer>[1],
  options: ParleyServerOptions = {},
) {
  const logs: { level: number; msg: string; count?: number; total?: number; err?: { message: string } }[] = []
  const adapter: AdapterFactory = (sockets) => {
    const memory = new MemoryAdapter(sockets)
    return Object.assign(memory, extra(memory))
  }
  const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  const handoff = { timeout: 500, retrySpread: 0 }
  const server = await startServer({ adapter, handoff, ...options }, setup, {
    logger,
    return503OnClosing: false,
  })
  opened.started = server
  /** The lines whose message holds `text`, as `[count, total]`. */
  const counts = (text: string) => logs.filter(({ msg }) => msg.includes(text)).map((l) => [l.count, l.total])
  /** Three of `text` came: one line at once, the other two in one line when the server closes. */
  const oneNowTwoAtClose = async (text: string) => {
    await server.app.close()
    expect(counts(text)).toEqual([
      [1, 1],
      [2, 3],
    ])
  }
  return { started: server, logs, counts, oneNowTwoAtClose }
}

/** Three WebSocket clients, one after the other: new sessions, or resumes of `sid(i)`. */
async function connectThree(base: string, sid?: (i: number) => string) {
  const clients: RawClient[] = []
  for (let i = 0; i < 3; i++) {
    const hello = sid ? { sid: sid(i), ack: 0 } : {}
    clients.push(await rawConnect('websocket', base, hello))
  }
  return clients
}

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']

/**
 * One real client on each transport, one after the other, each trying once: the errors their
 * first attempt ended with.
 */
async function connectOncePerTransport(base: string) {
  const errors: ParleyError<string>[] = []
  for (const transport of TRANSPORTS) {
    const c = connect(base, { transports: [transport], reconnection: false })
    errors.push(await new Promise<ParleyError<string>>((resolve) => c.once('connect_error', resolve)))
  }
  return errors
}

/** One real client on each transport, whose handshake fails inside the server: each gets only a code. */
async function failOncePerTransport(base: string) {
  const errors = await connectOncePerTransport(base)
  expect(errors.map(({ code, message }) => [code, message])).toEqual(
    TRANSPORTS.map(() => [
      'PARLEY_SERVER_SHUTTING_DOWN',
      'the handshake failed inside the server: try again',
    ]),
  )
}

/**
 * Adapter calls whose `addAll` waits until `release` when `holds` its rooms (the ids of those
 * sockets in `joining`), and whose every `delAll` rejects (their ids in `leaves`).
 */
function heldJoins(holds: (rooms: string[]) => boolean) {
  let release = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const joining: string[] = []
  const leaves: string[] = []
  const calls = (memory: MemoryAdapter) => {
    const addAll = memory.addAll.bind(memory)
    return {
      addAll: async (id: string, rooms: Iterable<string>) => {
        const list = [...rooms]
        if (holds(list)) {
          joining.push(id)
          await gate
        }
        addAll(id, list)
      },
      delAll: (id: string) => {
        leaves.push(id)
        return storeAway()
      },
    }
  }
  return { calls, joining, leaves, release: () => release() }
}

/** A snapshot of session `sid`, as a node would hand it off, keeping `kept` for its client. */
const snapshot = (sid: string, kept: string[]): SessionSnapshot => ({
  v: 1,
  sid,
  id: `id-${sid}`,
  inSeq: 0,
  outSeq: kept.length,
  kept,
  rooms: [],
  data: {},
  dataLost: false,
  waiting: [],
  openRequests: [],
  pendingAcks: [],
  created: Date.now(),
})

describe('an adapter that rejects', () => {
  it('logs the owner records it could not write once per burst, with the first error', async () => {
    const { started, logs, oneNowTwoAtClose } = await serverWith(() => ({ sessionOpened: storeAway }))
    await connectThree(started.base)
    const text = 'could not record the owner of'
    expect(logs.find(({ msg }) => msg.includes(text))?.err?.message).toBe('the store went away')
    await oneNowTwoAtClose(text)
  })

  it('logs the claims it could not make once per burst; each client is told to try again, as when the store cannot say', async () => {
    const { started, oneNowTwoAtClose } = await serverWith(() => ({ claimSession: storeAway }))
    for (let i = 0; i < 3; i++) {
      const refusal = await rawConnect('websocket', started.base, { sid: `gone-session-${i}`, ack: 0 }).then(
        () => 'a new session',
        (err: unknown) => err,
      )
      expect(refusal).toBeInstanceOf(Refused)
      expect(refusal).toMatchObject({
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message:
          'PARLEY_SERVER_SHUTTING_DOWN: the session could not be looked up or claimed in the store now: try again',
      })
    }
    expect(started.app.parley.socketsCount).toBe(0)
    await oneNowTwoAtClose('could not claim')
  })

  it('logs the sessions it could not ask another node for once per burst', async () => {
    const { started, oneNowTwoAtClose } = await serverWith(() => ({
      // Other nodes hold the sessions, one each, at an address where nothing listens: each is
      // asked (one found unreachable is not tried again for a while).
      sessionOwner: (sid: string) => ({ node: `other-${sid}`, url: 'http://127.0.0.1:1' }),
      claimSession: async () => null,
      handOff: async () => false,
      requestHandOff: storeAway,
    }))
    await connectThree(started.base, (i) => `elsewhere-${i}`)
    await oneNowTwoAtClose('could not ask for')
  })

  it('logs the sessions it could not ask for when its requestHandOff cannot be read, and relays them', async () => {
    let failing = false
    const { started, logs, oneNowTwoAtClose } = await serverWith((memory) => {
      // A member that could be read at the registration, and no longer can: the store's client
      // behind a getter, gone.
      Object.defineProperty(memory, 'requestHandOff', {
        get() {
          if (failing) throw new Error('the store went away')
          return storeAway
        },
      })
      return {
        sessionOwner: (sid: string) => ({ node: `other-${sid}`, url: 'http://127.0.0.1:1' }),
        claimSession: async () => null,
        handOff: async () => false,
      }
    })
    failing = true
    // Each resume, its owner unreachable, gets a new session, as when the ask itself fails.
    const clients = await connectThree(started.base, (i) => `elsewhere-${i}`)
    expect(clients.every((c) => typeof c.sid === 'string')).toBe(true)
    expect(logs.find(({ msg }) => msg.includes('could not ask for'))?.err?.message).toBe(
      'the store went away',
    )
    await oneNowTwoAtClose('could not ask for')
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
    const { started, oneNowTwoAtClose } = await serverWith(() => calls)
    await connectThree(started.base)
    const draining = started.app.parley.drain()
    await until(() => stored.length === 3, 3000, 'the snapshots')
    // The application ends them while they are handed off: their snapshots must be taken back.
    for (const socket of started.app.parley.sockets.values()) socket.disconnect()
    await draining
    await oneNowTwoAtClose('could not be withdrawn')
  })

  it('logs the resumes it could not send on to another node once per burst', async () => {
    const { stored, calls } = storing({ anotherNode: storeAway })
    // The three resumes must come while the snapshots are still held: 500 ms was too short for
    // three handshakes on a loaded machine (the third came once the drain had ended).
    const { started, oneNowTwoAtClose } = await serverWith(() => calls, undefined, {
      handoff: { timeout: 2000, retrySpread: 0 },
    })
    const sids = (await connectThree(started.base)).map((c) => c.sid)
    const draining = started.app.parley.drain()
    await until(() => stored.length === 3, 3000, 'the snapshots')
    // Their clients come back to this node, which cannot name another: it answers them itself.
    for (const sid of sids) {
      const answer = await rawConnect('websocket', started.base, { sid, ack: 0 }).catch((e: unknown) => e)
      expect(answer).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
    }
    await draining
    await oneNowTwoAtClose('could not name another node')
  })

  it('logs the handshakes that failed once per burst, on every transport; each client gets only a code', async () => {
    const { started, logs, counts } = await serverWith(() => ({ addAll: storeAway }))
    await failOncePerTransport(started.base)
    const first = logs.find(({ msg }) => msg.includes('handshake failed'))
    expect(first).toMatchObject({ level: 50, err: { message: 'the store went away' } })
    // Said to be the adapter's, with the adapter's own error (not one wrapping it).
    expect(first?.msg).toContain(
      'handshake failed for 1 client(s) since the last such line: the adapter failed',
    )
    expect(first?.err).not.toHaveProperty('cause')
    await started.app.close()
    // Each client tried its transport once more at once (a balancer would send it to another
    // node) before its connect_error: six handshakes, one line at once, five at the close.
    expect(counts('handshake failed')).toEqual([
      [1, 1],
      [5, 6],
    ])
  })

  it('logs a takeover whose claim fails as the adapter’s failure of the handshake, and keeps no socket', async () => {
    // A real snapshot: a node drains with handoff, and its adapter keeps what it is given.
    const snapshots: SessionSnapshot[] = []
    const old = await startServer({
      adapter: (sockets) =>
        Object.assign(new MemoryAdapter(sockets), {
          handOff: async (snapshot: SessionSnapshot) => {
            snapshots.push(snapshot)
            return true
          },
          claimSession: async () => null,
          otherNodes: () => 1,
        }),
      handoff: { timeout: 100, retrySpread: 0 },
    })
    const client = await rawConnect('websocket', old.base)
    await old.app.parley.drain()
    await old.app.close()
    client.close()
    expect(snapshots).toHaveLength(1)
    // The next node claims it, and its claim's takeOver rejects (which its contract rules out).
    const claim = { snapshot: snapshots[0]!, takeOver: storeAway }
    const { started, logs } = await serverWith(() => ({ claimSession: async () => claim }))
    const answer = await rawConnect('websocket', started.base, { sid: client.sid, ack: 0 }).catch(
      (e: unknown) => e,
    )
    expect(answer).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
    expect(logs.filter(({ msg }) => msg.includes('handshake failed'))).toMatchObject([
      {
        level: 50,
        msg: expect.stringContaining('the adapter failed'),
        err: { message: 'the store went away' },
      },
    ])
    // The socket, registered for the takeover, is not kept: never attached, it would stay for good.
    expect(started.app.parley.socketsCount).toBe(0)
    expect(await started.app.parley.fetchSockets()).toEqual([])
  })

  it('logs the claims whose takeOver rejects as they are given back once per burst, and goes on', async () => {
    // Snapshots no node can restore, from claims whose takeOver rejects (its contract rules that
    // out): the claim is given back, and that rejection must not go unhandled.
    const { started, oneNowTwoAtClose } = await serverWith(() => ({
      claimSession: async (sid: string) => ({
        snapshot: snapshot(sid, ['not a packet']),
        takeOver: storeAway,
      }),
    }))
    // Each client gets a new session at once, as for any snapshot no node can restore.
    const answers = await Promise.all(
      TRANSPORTS.map((transport, i) =>
        rawConnect(transport, started.base, { sid: `garbled-${i}`, ack: 0 }).then(
          (client) => client.open.recovered,
          (e: Refused) => e.code,
        ),
      ),
    )
    expect(answers).toEqual(TRANSPORTS.map(() => false))
    await sleep(20)
    await oneNowTwoAtClose('could not give back')
  })

  it('logs a handshake that failed elsewhere in the server apart from the adapter’s, as a bug', async () => {
    // A bug inside the server, which a real server cannot be made to have: attaching throws.
    const attach = vi.spyOn(Session.prototype, 'attach').mockImplementation(() => {
      throw new Error('a bug in attach')
    })
    try {
      const { started, logs, counts } = await serverWith(() => ({}))
      // The client gets what it got before: a code it tries again on, never the error's text.
      await failOncePerTransport(started.base)
      const first = logs.find(({ msg }) => msg.includes('handshake failed'))
      expect(first).toMatchObject({ level: 50, err: { message: 'a bug in attach' } })
      expect(first?.msg).toContain("with an error inside the server that is not the adapter's (a bug")
      await started.app.close()
      expect(counts('handshake failed')).toEqual([
        [1, 1],
        [5, 6],
      ])
      expect(counts('the adapter failed')).toEqual([])
    } finally {
      attach.mockRestore()
    }
  })

  it('logs the ended sockets it could not take out of their rooms once per burst', async () => {
    // Its store goes away once a socket's join of the lobby is through: the `delAll` that
    // follows that join, for a socket that ended while it was under way, throws.
    const away = new Set<string>()
    const { started, oneNowTwoAtClose } = await serverWith(
      (memory) => {
        const [addAll, delAll] = [memory.addAll.bind(memory), memory.delAll.bind(memory)]
        return {
          addAll: async (id: string, rooms: Iterable<string>) => {
            const list = [...rooms]
            await sleep(10)
            addAll(id, list)
            if (list.includes('lobby')) away.add(id)
          },
          delAll: (id: string) => {
            if (away.has(id)) throw new Error('the store went away')
            delAll(id)
          },
        }
      },
      (app) => {
        // Ended while its join is under way: it leaves its rooms now, and again after the join.
        app.parley.on('connection', (socket) => {
          void socket.join('lobby')
          socket.disconnect()
        })
      },
    )
    for (const transport of TRANSPORTS) {
      const c = connect(started.base, { transports: [transport] })
      await new Promise((resolve) => c.once('disconnect', resolve))
    }
    await until(() => away.size === 3, 3000, 'the three joins')
    await sleep(50)
    await oneNowTwoAtClose('could not take')
  })

  it.each([
    [
      'throws',
      (): void => {
        throw new Error('the store went away')
      },
    ],
    ['rejects', storeAway],
  ])(
    'ends a session whose adapter %s at its first delAll and at sessionClosed as any other, and logs it once per burst',
    async (_, fail) => {
      const ended: string[] = []
      const { started, counts } = await serverWith(
        () => ({ delAll: fail, sessionClosed: fail }),
        (app) => {
          app.parley.on('connection', (socket) => {
            socket.on('disconnect', (reason) => ended.push(reason))
          })
        },
      )
      // Each client leaves: its session ends, and the adapter fails as the socket leaves its rooms.
      for (const transport of TRANSPORTS) {
        const c = connect(started.base, { transports: [transport] })
        await new Promise<void>((resolve) => c.once('connect', () => resolve()))
        c.disconnect()
        await until(() => ended.length === TRANSPORTS.indexOf(transport) + 1, 3000, 'the disconnect')
      }
      expect(ended).toEqual(['client disconnect', 'client disconnect', 'client disconnect'])
      await until(() => started.app.parley.socketsCount === 0, 3000, 'no socket left')
      await started.app.close()
      for (const text of ['could not take', 'could not remove the owner record']) {
        expect([text, counts(text)]).toEqual([
          text,
          [
            [1, 1],
            [2, 3],
          ],
        ])
      }
    },
  )

  it.each(TRANSPORTS)(
    'answers a session ended during its join with its CLOSE over %s, though delAll rejects, and logs it',
    async (transport) => {
      // The adapter records the socket's own room only once the test says so, and every delAll
      // rejects (an async one: typed void, it fits the adapter's type).
      const { calls, joining: recording, leaves, release } = heldJoins(() => true)
      const { started, logs } = await serverWith(calls)
      const c = connect(started.base, { transports: [transport] })
      try {
        await until(() => recording.length > 0, 3000, 'the join of its own room')
        // The application ends the session while its join is under way.
        for (const socket of started.app.parley.sockets.values()) socket.disconnect()
        release()
        const [error, willRetry] = await new Promise<[ParleyError<string>, boolean]>((resolve) =>
          c.once('connect_error', (e, retry) => resolve([e, retry])),
        )
        expect([error.code, error.details, willRetry]).toEqual([
          'PARLEY_DISCONNECTED',
          { reason: 'server disconnect' },
          false,
        ])
        await until(() => started.app.parley.socketsCount === 0, 3000, 'no socket left')
        // Its end, and its end again after the join: each delAll failed, one socket counted once.
        await until(() => leaves.length === 2, 3000, 'the leave after the join')
        await started.app.close()
        const leave = logs.filter(({ msg }) => msg.includes('could not take'))
        expect(leave[0]).toMatchObject({ level: 50, err: { message: 'the store went away' } })
        expect(leave.map(({ total }) => total)).toEqual([1])
        expect(logs.filter(({ msg }) => msg.includes('handshake failed'))).toEqual([])
      } finally {
        // Released in any case: a join held for good would hold the server's close too.
        release()
        c.disconnect()
      }
    },
  )

  it('counts a socket whose WebSocket closes during its join once, though both of its leaves fail', async () => {
    // The application's join of the lobby answers only when the test says so; every delAll
    // rejects. Without recovery, the session ends as its WebSocket closes.
    const { calls, joining, leaves, release } = heldJoins((rooms) => rooms.includes('lobby'))
    const { started, counts } = await serverWith(
      calls,
      (app) => {
        app.parley.on('connection', (socket) => void socket.join('lobby'))
      },
      { recovery: false, handoff: false },
    )
    try {
      const client = await rawConnect('websocket', started.base)
      await until(() => joining.length === 1, 3000, 'the join of the lobby')
      client.close()
      await until(() => started.app.parley.socketsCount === 0, 3000, 'the end of the session')
      release()
      // Out at its end, and again once the join is done (which put it back in the lobby).
      await until(() => leaves.length === 2, 3000, 'the leave after the join')
      expect(leaves).toEqual([joining[0], joining[0]])
      await started.app.close()
      expect(counts('could not take')).toEqual([[1, 1]])
    } finally {
      release()
    }
  })

  it('logs the handed-off sessions it could not restore once per burst; each client starts anew', async () => {
    // Claims no real node makes (one of another version, or a store that garbles what it keeps,
    // would): three snapshots whose kept packets are not packets, three tails out of order.
    const registry = new Registry()
    const { started, logs, counts } = await serverWith(
      () => ({
        claimSession: async (sid: string) => {
          const garbled = sid.startsWith('garbled')
          return {
            snapshot: snapshot(sid, garbled ? ['not a packet'] : []),
            takeOver: async (join: () => void) => {
              join()
              return { tail: ['[1,5,"news",[]]'], complete: true }
            },
          }
        },
      }),
      undefined,
      { metrics: { registry } },
    )
    // Not resumed, and the same on every transport: a new session at once for a snapshot that
    // cannot be read (no try ever could), the session's CLOSE for a tail out of order.
    const answers: Record<string, unknown[]> = { garbled: [], 'out-of-order': [] }
    for (const kind of ['garbled', 'out-of-order']) {
      for (const [i, transport] of TRANSPORTS.entries()) {
        const sid = `${kind}-${i}`
        const answer = await rawConnect(transport, started.base, { sid, ack: 0 }).catch((e: unknown) => e)
        answers[kind]!.push(
          answer instanceof Refused
            ? [answer.code, answer.message]
            : answer instanceof Closed
              ? answer.packet.reason
              : (answer as RawClient).sid !== sid && (answer as RawClient).open.recovered === false && 'anew',
        )
      }
    }
    expect(answers).toEqual({
      garbled: TRANSPORTS.map(() => 'anew'),
      'out-of-order': TRANSPORTS.map(() => 'session expired'),
    })
    const text = 'could not be restored'
    expect(logs.filter(({ msg }) => msg.includes(text))).toMatchObject([
      { level: 40, count: 1, err: { code: 'PARLEY_INVALID_PACKET' } },
    ])
    expect(started.app.parley.socketsCount).toBe(3)
    // The claims of snapshots it could not read are given back (their tails were never asked for).
    expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'given_back' })).toBe(3)
    await started.app.close()
    expect(counts(text)).toEqual([
      [1, 1],
      [5, 6],
    ])
  })
})
