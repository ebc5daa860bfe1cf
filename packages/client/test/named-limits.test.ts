// An emit that meets one of the client's limits names its event, as one that cannot be sent does
// (named-errors.test.ts): the queue full (`maxQueuedMessages`), too many replies awaited
// (`maxPendingAcks`), a reply that did not come in time, a volatile emit dropped with no
// transport, whose reply cannot come, and the replies awaited when the session ends. An application with many emits, or
// many `emitWithAck` awaited together, can tell which one it was. The codes stay what they were.
// Real client against the real server; the session goes on.
import { ErrorCode } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  parleyOf,
  pricesSession,
  type ServerSocket,
  STEADY_HEARTBEAT,
  startServer,
  thrown,
  until,
} from './helpers.js'

afterEach(closeAll)

/** The server socket with its `timeout(ms)`, which the helpers' type leaves out. */
type Timed = ServerSocket & { timeout(ms: number): ServerSocket }

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it('names the event of a reply not in time and of an emit past maxPendingAcks', async () => {
    const { socket, got, sessions } = await pricesSession(transport, {
      options: { maxPendingAcks: 1 },
      // Never answers: the client's wait runs out.
      more: (peer) => peer.on('slow', () => {}),
    })
    const late = socket
      .timeout(200)
      .emitWithAck('slow')
      .catch((error: unknown) => error)
    expect(thrown(() => socket.emit('price', 1, () => {}))).toMatchObject({
      code: ErrorCode.TOO_MANY_PENDING_ACKS,
      message: 'event "price": more than 1 replies awaited',
      details: { limit: 1 },
    })
    await expect(socket.emitWithAck('price', 2)).rejects.toMatchObject({
      code: ErrorCode.TOO_MANY_PENDING_ACKS,
      message: 'event "price": more than 1 replies awaited',
    })
    expect(await late).toMatchObject({
      code: ErrorCode.ACK_TIMEOUT,
      message: 'event "slow": no reply within 200 ms',
    })
    socket.emit('price', 'fine')
    await until(() => got.length > 0, 3000, 'the next emit')
    expect(got).toEqual(['fine'])
    expect(sessions()).toBe(1)
  })

  it('names the event of an emit, and the one a reply answers, that find the queue full', async () => {
    // One message kept until the server acknowledges it: a second in the same run finds it there.
    const { socket, got, peer } = await pricesSession(transport, { options: { maxQueuedMessages: 1 } })
    const errors: unknown[] = []
    // Whether the emit that fills the queue found it full already (the server had not
    // acknowledged the one before yet): either way, the reply finds it full.
    let filled: unknown
    socket.on('quote', (ack: (reply: unknown) => void) => {
      filled = thrown(() => socket.emit('price', 'first'))
      errors.push(thrown(() => ack('too late')))
    })
    const serverSocket = await peer()
    socket.emit('price', 1)
    expect(thrown(() => socket.emit('price', 2))).toMatchObject({
      code: ErrorCode.QUEUE_FULL,
      message: 'event "price": too many messages queued',
      details: { maxQueuedMessages: 1, queued: 1 },
    })
    await until(() => got.length === 1, 3000, 'the first emit')
    // The reply finds the queue full; the server's wait ends with its timeout.
    const answer = await (serverSocket as Timed)
      .timeout(300)
      .emitWithAck('quote')
      .catch((error: unknown) => error)
    expect(answer).toMatchObject({ code: ErrorCode.ACK_TIMEOUT })
    expect(errors).toEqual([
      expect.objectContaining({
        code: ErrorCode.QUEUE_FULL,
        message: 'reply to "quote": too many messages queued',
      }),
    ])
    const sent = filled === undefined ? [1, 'first'] : [1]
    await until(() => got.length === sent.length, 3000, 'the emit before the reply')
    expect(got).toEqual(sent)
    expect(socket.connected).toBe(true)
  })

  it('names the event of a volatile emit dropped while no transport is attached', async () => {
    const server = await startServer(() => {}, STEADY_HEARTBEAT)
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    socket.disconnect()
    await expect(socket.volatile.emitWithAck('price', 1)).rejects.toMatchObject({
      code: ErrorCode.DISCONNECTED,
      message: 'event "price": not connected',
    })
    const errors: unknown[] = []
    socket.timeout(1000).volatile.emit('price', 2, (error: unknown) => errors.push(error))
    await until(() => errors.length > 0, 3000, 'the callback')
    expect(errors).toEqual([
      expect.objectContaining({ code: ErrorCode.DISCONNECTED, message: 'event "price": not connected' }),
    ])
  })

  it.each([
    ['the client disconnects', 'client'],
    ['the server disconnects the socket', 'server'],
  ] as const)('names the event of each reply awaited when %s', async (_, who) => {
    let sessions = 0
    const heard: string[] = []
    const server = await startServer(
      (app) =>
        parleyOf(app).on('connection', (socket) => {
          sessions++
          // Never answered: the waits end with the session.
          socket.on('slow', () => heard.push('slow'))
          socket.on('quote', () => heard.push('quote'))
        }),
      STEADY_HEARTBEAT,
    )
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    const ended = [socket.emitWithAck('slow'), socket.timeout(60_000).emitWithAck('quote', 1)].map((wait) =>
      wait.catch((error: unknown) => error),
    )
    await until(() => heard.length === 2, 3000, 'both events at the server')
    if (who === 'client') socket.disconnect()
    else [...parleyOf(server.app).sockets.values()][0]?.disconnect()
    expect(await Promise.all(ended)).toEqual([
      expect.objectContaining({
        code: ErrorCode.DISCONNECTED,
        message: 'event "slow": session ended before the reply',
      }),
      expect.objectContaining({
        code: ErrorCode.DISCONNECTED,
        message: 'event "quote": session ended before the reply',
      }),
    ])
    expect(sessions).toBe(1)
  })
})
