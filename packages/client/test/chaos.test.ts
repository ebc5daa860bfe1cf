// The delivery promise under a network that fails at random: the Parley client and server talk
// through a proxy that, from a fixed seed, cuts connections at random moments, stalls one
// direction, and refuses every WebSocket upgrade (so the session lives on SSE or long-polling,
// while the client keeps trying to climb back). Every emit, each way, must arrive exactly once
// and in order, every request be answered once, and both ends must then close.
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import type { Socket } from '../src/socket.js'
import { startChaosProxy } from './chaos-proxy.js'
import { own, parleyOf, type ServerSocket, until } from './helpers.js'

/**
 * How long the faults last, and the messages each way: at 250 a second, some are left when the
 * faults end, and go at once then.
 */
const CHAOS_MS = Number(process.env.PARLEY_CHAOS_MS ?? 6000)
const N = 2000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
/** Rejects with `what` when `promise` is not done within `ms`. */
const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what} not done within ${ms} ms`)))])

const runs: [TransportName, number][] = [
  ['sse', Number(process.env.PARLEY_CHAOS_SEED ?? 7)],
  ['polling', Number(process.env.PARLEY_CHAOS_SEED ?? 11)],
]

// The two runs go side by side, each with its own server, proxy and client (`own`): most of a
// run is the faults' time, spent waiting.
describe.concurrent.each(runs)('a network failing at random, on %s (seed %i)', (transport, seed) => {
  it('carries every emit each way exactly once and in order, and both ends close', async (context) => {
    const test = own(context)
    const sockets: ServerSocket[] = []
    const atServer: number[] = []
    const ends: string[] = []
    const server = await test.server((app) => {
      parleyOf(app).on('connection', (socket) => {
        sockets.push(socket)
        socket.on('up', (n: number, ack?: (n: number) => void) => {
          atServer.push(n)
          ack?.(n)
        })
        socket.on('disconnect', (reason: string) => ends.push(reason))
      })
    })
    const proxy = test.later(await startChaosProxy(server.port, seed))
    // WebSocket first, as a browser would, and refused: the session steps down to `transport`.
    const socket: Socket = test.client(proxy.url, {
      transports: ['websocket', transport],
      connectTimeout: 1500,
      upgradeDelay: 300,
      upgradeDelayMax: 1000,
    })
    const atClient: number[] = []
    socket.on('down', (n: number) => atClient.push(n))
    const answers: number[] = []
    await until(() => sockets.length === 1, 10_000, 'the first connection')
    const peer = sockets[0]!

    // Both sides talk in small bursts while the faults last, then finish at once.
    let sent = 0
    let calm = false
    const talk = (async () => {
      while (sent < N) {
        for (let i = 0; i < 5 && sent < N; i++) {
          const n = ++sent
          // Every tenth is a request, waiting for its answer as long as the session lives.
          if (n % 10 === 0) socket.emit('up', n, (back: number) => answers.push(back))
          else socket.emit('up', n)
          peer.emit('down', n)
        }
        if (!calm) await sleep(20)
      }
    })()
    await sleep(CHAOS_MS)
    proxy.calm()
    calm = true
    await talk

    // Not all there in time: the comparisons below show what is missing.
    await until(() => atServer.length >= N && atClient.length >= N && answers.length >= N / 10, 20_000).catch(
      () => {},
    )
    // Allow any duplicate to show up before judging.
    await sleep(200)
    expect(atServer).toEqual(range(N))
    expect(atClient).toEqual(range(N))
    expect(answers).toEqual(range(N / 10).map((n) => n * 10))
    // One session all along: every fault was inside its recovery window.
    expect(sockets).toHaveLength(1)
    expect(socket.id).toBe(peer.id)
    // The faults happened, and the client never climbed to WebSocket.
    const { counts } = proxy
    expect(counts.cuts + counts.torn).toBeGreaterThan(0)
    expect(counts.stalls).toBeGreaterThan(0)
    expect(counts.refusedUpgrades).toBeGreaterThan(0)
    await until(() => socket.connected, 5000, 'the session up')
    expect(socket.transport).toBe(transport)

    // Both ends close: the client's goodbye reaches the server, and the server's close ends.
    socket.disconnect()
    await until(() => ends.length === 1, 5000, "the server's disconnect")
    await within(server.close(), 10_000, "the server's close")
  }, 60_000)
})
