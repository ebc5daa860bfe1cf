// The application's own code that fails on what clients send (a handler, a middleware, a
// listener, the allowedOrigins function): a client can send as much as it likes, so each kind
// is logged once per burst, the first at once with its err and event, never once per event.
import { connect, type ParleyError, type TransportName } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'

const opened = closedAfterEach()

interface Line {
  level: number
  msg: string
  count?: number
  total?: number
  event?: string
  events?: string[]
  moreEvents?: boolean
  origin?: string
  err?: string | { message: string; stack?: string; code?: string }
}

/** A server logging at warn into `lines`, set up by `setup`. */
async function logged(
  setup: Parameters<typeof startServer>[1],
  options: Parameters<typeof startServer>[0] = {},
) {
  const lines: Line[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } }
  opened.started = await startServer(options, setup, { logger })
  const server = opened.started
  /** The lines whose message holds `text`. */
  const about = (text: string) => lines.filter(({ msg }) => msg.includes(text))
  /** Closes the server (the rest of a burst is logged then), and gives `[count, total]` of each line about `text`. */
  const countsAtClose = async (text: string) => {
    await server.app.close()
    opened.started = undefined
    return about(text).map(({ count, total }) => [count, total])
  }
  return { base: server.base, lines, about, countsAtClose }
}

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']

/** A client on `transport` only, connected. */
async function connected(base: string, transport: TransportName) {
  const client = connect(base, { transports: [transport], reconnection: false })
  await new Promise<void>((resolve) => client.once('connect', () => resolve()))
  return client
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: ParleyError<string>) => [error.code, error.message],
  )

describe.each(TRANSPORTS)('a handler that throws for every event, over %s,', (transport) => {
  it('is logged once per burst of each event, the first at once with its err; the client gets what it got', async () => {
    const calls = { boom: 0, bang: 0 }
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        socket.on('boom', async () => {
          calls.boom++
          throw new Error('a bug in boom')
        })
        socket.on('bang', () => {
          calls.bang++
          throw new TypeError('a bug in bang')
        })
      })
    })
    const client = await connected(base, transport)
    const replies = []
    for (let i = 0; i < 20; i++) {
      client.emit('boom')
      replies.push(refusal(client.timeout(3000).emitWithAck('boom')))
    }
    replies.push(refusal(client.timeout(3000).emitWithAck('bang')))
    expect(await Promise.all(replies)).toEqual(
      replies.map(() => ['PARLEY_HANDLER_ERROR', 'the handler failed']),
    )
    await until(() => calls.boom === 40 && calls.bang === 1, 3000, 'every event handled')
    // One line for each event's first failure, with what a user needs to fix it.
    const lines = about('event handler failed')
    expect(lines).toHaveLength(2)
    const boom = lines.find(({ event }) => event === 'boom')
    expect(boom).toMatchObject({ level: 50, events: ['boom'], count: 1 })
    expect(boom?.err).toMatchObject({
      message: 'a bug in boom',
      stack: expect.stringContaining('a bug in boom'),
    })
    const bang = lines.find(({ event }) => event === 'bang')
    expect(bang).toMatchObject({ level: 50, err: { message: 'a bug in bang' }, count: 1 })
    client.disconnect()
    expect(await countsAtClose('event handler failed')).toEqual([
      [1, 1],
      [1, 1],
      [39, 40],
    ])
  })
})

describe('a handler whose reply cannot be sent, for every event', () => {
  it('is logged once per burst, the first at once with its err; each client gets the handler’s failure', async () => {
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        // A BigInt: not JSON, so the reply cannot be encoded.
        socket.on('count', (ack: (n: unknown) => void) => ack(BigInt(1)))
      })
    })
    const client = await connected(base, 'websocket')
    const replies = Array.from({ length: 10 }, () => refusal(client.timeout(3000).emitWithAck('count')))
    expect(await Promise.all(replies)).toEqual(
      replies.map(() => ['PARLEY_HANDLER_ERROR', 'the handler failed']),
    )
    expect(about('reply could not be sent')).toMatchObject([
      { level: 50, event: 'count', err: { code: 'PARLEY_UNSERIALIZABLE' }, count: 1 },
    ])
    client.disconnect()
    expect(await countsAtClose('reply could not be sent')).toEqual([
      [1, 1],
      [9, 10],
    ])
  })
})

describe('a socket middleware that throws for every event', () => {
  it('is logged once per burst, with the first err and a bounded list of the events seen', async () => {
    let refused = 0
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        socket.use(([event]) => {
          refused++
          throw new Error(`a bug in the middleware, for ${event}`)
        })
      })
    })
    const client = await connected(base, 'websocket')
    // Names the client makes up: as many as it likes.
    for (let i = 0; i < 30; i++) client.emit(`made-up-${i}`)
    expect(await refusal(client.timeout(3000).emitWithAck('last'))).toEqual([
      'PARLEY_HANDLER_ERROR',
      'refused by middleware',
    ])
    await until(() => refused === 31, 3000, 'every event refused')
    const first = about('event middleware failed')
    expect(first).toHaveLength(1)
    expect(first[0]).toMatchObject({
      level: 50,
      event: 'made-up-0',
      err: { message: 'a bug in the middleware, for made-up-0' },
      count: 1,
    })
    client.disconnect()
    expect(await countsAtClose('event middleware failed')).toEqual([
      [1, 1],
      [30, 31],
    ])
    const rest = about('event middleware failed')[1]!
    expect(rest.events).toEqual(Array.from({ length: 10 }, (_, i) => `made-up-${i + 1}`))
    expect(rest.moreEvents).toBe(true)
  })
})

describe('a socket middleware that fails for names its client made long', () => {
  it('logs each name cut to 64 characters, with how many more it had, quoted in the message', async () => {
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        socket.use(() => {
          throw new Error('a bug in the middleware')
        })
      })
    })
    const client = await connected(base, 'websocket')
    // As long as a name may be (256), and made to read as the line's own words.
    const names = ['"); all is well ('.padEnd(256, 'a'), 'b'.repeat(256)]
    for (const name of names) {
      expect(await refusal(client.timeout(3000).emitWithAck(name))).toEqual([
        'PARLEY_HANDLER_ERROR',
        'refused by middleware',
      ])
    }
    client.disconnect()
    await countsAtClose('event middleware failed')
    const [first, rest] = about('event middleware failed')
    const shown = names.map((name) => `${name.slice(0, 64)}…+192`)
    expect(first).toMatchObject({ event: shown[0], events: [shown[0]], count: 1 })
    expect(first!.msg).toContain(`for ${JSON.stringify(shown[0])});`)
    expect(rest).toMatchObject({ event: shown[1], events: [shown[1]], count: 1 })
  })
})

describe('ack callbacks that throw', () => {
  /**
   * Clients on `transports` that reply 'pong' to 'ping'; `ask` makes three emits whose callbacks
   * throw. One line at once with the err, the other two at close, and every session still
   * replies after them.
   */
  async function threeThrow(transports: TransportName[], ask: (callback: () => void) => void) {
    let called = 0
    const { base, about, countsAtClose } = await logged(() => {})
    const clients = await Promise.all(transports.map((transport) => connected(base, transport)))
    for (const client of clients) client.on('ping', (ack: (reply: string) => void) => ack('pong'))
    ask(() => {
      called++
      throw new Error('a bug in the ack callback')
    })
    await until(() => called === 3, 3000, 'every reply')
    expect(about('ack callback failed')).toMatchObject([
      { level: 50, err: { message: 'a bug in the ack callback' }, count: 1 },
    ])
    expect(await opened.started!.app.parley.timeout(3000).emitWithAck('ping')).toEqual(
      transports.map(() => 'pong'),
    )
    for (const client of clients) client.disconnect()
    expect(await countsAtClose('ack callback failed')).toEqual([
      [1, 1],
      [2, 3],
    ])
  }

  it("of a socket's emit, one for each socket, are logged once per burst; the sessions go on", async () => {
    // What `app.parley.emit` with a callback would be, were it one per socket: each fails.
    await threeThrow(TRANSPORTS, (callback) => {
      for (const socket of opened.started!.app.parley.sockets.values()) socket.emit('ping', callback)
    })
  })

  it("of a broadcast's emit are logged in the same burst; the process and the server go on", async () => {
    await threeThrow(['websocket'], (callback) => {
      for (let i = 0; i < 3; i++) opened.started!.app.parley.timeout(3000).emit('ping', callback)
    })
  })
})

describe('listeners that throw', () => {
  it("are logged once per burst of each event, the server's and the socket's", async () => {
    let ended = 0
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        socket.on('disconnect', () => {
          ended++
          throw new Error('a bug in disconnect')
        })
        throw new Error('a bug in connection')
      })
    })
    for (const transport of TRANSPORTS) (await connected(base, transport)).disconnect()
    await until(() => ended === 3, 3000, 'the sessions ended')
    expect(about('"connection" listener failed')).toMatchObject([
      { level: 50, event: 'connection', err: { message: 'a bug in connection' }, count: 1 },
    ])
    expect(about('"disconnect" listener failed')).toMatchObject([
      { level: 50, event: 'disconnect', err: { message: 'a bug in disconnect' }, count: 1 },
    ])
    expect(await countsAtClose('listener failed')).toEqual([
      [1, 1],
      [1, 1],
      [2, 3],
      [2, 3],
    ])
  })
})

describe('connection listeners that reject', () => {
  it('are logged as listeners that throw, never left unhandled; the session goes on', async () => {
    const thrown = await unheard(async () => {
      const { base, about, countsAtClose } = await logged((app) => {
        app.parley.on('connection', async (socket) => {
          socket.on('echo', (text: string, ack: (reply: string) => void) => ack(text))
          await Promise.resolve()
          throw new Error('a bug in an async connection listener')
        })
      })
      for (const transport of TRANSPORTS) {
        const client = await connected(base, transport)
        expect(await client.timeout(3000).emitWithAck('echo', 'still here')).toBe('still here')
        client.disconnect()
      }
      await until(() => about('"connection" listener failed').length > 0, 3000, 'the line')
      expect(about('"connection" listener failed')).toMatchObject([
        {
          level: 50,
          event: 'connection',
          err: { message: 'a bug in an async connection listener' },
          count: 1,
        },
      ])
      expect(await countsAtClose('"connection" listener failed')).toEqual([
        [1, 1],
        [2, 3],
      ])
    })
    expect(thrown).toEqual([])
  })
})

describe('listeners that reject after the close', () => {
  it('are counted by the end of their turn, not held 10 s, past the moment the process may exit', async () => {
    let release = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const { base, about } = await logged((app) => {
      app.parley.on('connection', (socket) => {
        socket.on('disconnect', async () => {
          await released
          throw new Error('a bug in disconnect')
        })
      })
    })
    const clients = []
    for (const transport of TRANSPORTS) clients.push(await connected(base, transport))
    try {
      await opened.started!.app.close()
      opened.started = undefined
      // The close ended the sessions; their listeners fail now, after it, all in one turn.
      release()
      const failed = () => about('"disconnect" listener failed').map(({ count, total }) => [count, total])
      await until(() => failed().length > 0, 1000, 'the line, well before 10 s')
      expect(failed()).toEqual([[3, 3]])
    } finally {
      for (const client of clients) client.disconnect()
    }
  })
})

describe('an allowedOrigins function that throws', () => {
  it('is logged once per burst, the first at once with its err and origin; each origin is refused', async () => {
    const allowedOrigins = (origin: string) => {
      throw new Error(`a bug in allowedOrigins, for ${origin}`)
    }
    const { base, about, countsAtClose } = await logged(undefined, { allowedOrigins })
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/sse?v=1`, {
        method: 'POST',
        body: '[8,{}]',
        headers: { origin: `https://app${i}.example` },
      })
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([
        403,
        'PARLEY_ORIGIN_FORBIDDEN',
      ])
    }
    expect(about('allowedOrigins function threw')).toMatchObject([
      {
        level: 40,
        origin: 'https://app0.example',
        err: { message: 'a bug in allowedOrigins, for https://app0.example' },
        count: 1,
      },
    ])
    expect(await countsAtClose('allowedOrigins function threw')).toEqual([
      [1, 1],
      [4, 5],
    ])
  })
})

describe('a symbol or undefined thrown by a handshake middleware, a socket middleware or a handler', () => {
  it('is logged with err as text, where the logger would leave err out of the line', async () => {
    const { base, about, countsAtClose } = await logged((app) => {
      app.parley.use((socket) => {
        const odd = (socket.handshake.auth as { odd?: string } | null)?.odd
        if (odd === 'symbol') throw Symbol('no entry')
        if (odd === 'undefined') throw undefined
      })
      app.parley.on('connection', (socket) => {
        socket.use(([event], next) => next(event === 'refused' ? Symbol('not here') : undefined))
        socket.on('symbol', () => {
          throw Symbol('broken')
        })
        socket.on('undefined', () => {
          throw undefined
        })
      })
    })
    for (const odd of ['symbol', 'undefined']) {
      const client = connect(base, { transports: ['websocket'], auth: { odd } })
      const [error] = await new Promise<[ParleyError<string>]>((resolve) =>
        client.once('connect_error', (e) => resolve([e])),
      )
      expect([error.code, error.message]).toEqual(['PARLEY_REFUSED', 'refused by middleware'])
    }
    const client = await connected(base, 'websocket')
    for (const event of ['refused', 'symbol', 'undefined']) {
      expect(await refusal(client.timeout(3000).emitWithAck(event))).toEqual([
        'PARLEY_HANDLER_ERROR',
        event === 'refused' ? 'refused by middleware' : 'the handler failed',
      ])
    }
    client.disconnect()
    expect(about('event middleware failed')).toMatchObject([{ event: 'refused', err: 'Symbol(not here)' }])
    expect(about('event handler failed')).toMatchObject([
      { event: 'symbol', err: 'Symbol(broken)' },
      { event: 'undefined', err: 'undefined' },
    ])
    // The second refusal is logged at close, in a line of its own burst, with its err.
    await countsAtClose('handshake middleware failed')
    expect(about('handshake middleware failed').map((line) => line.err)).toEqual([
      'Symbol(no entry)',
      'undefined',
    ])
  })
})
