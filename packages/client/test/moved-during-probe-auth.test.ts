// MOVED that comes while an upgrade probe still waits for its `auth`: the probe sent no HELLO, so
// the server cannot have taken it; it took another transport of this client. The session resumes
// as after any MOVED with no probe in flight, and the probe goes with the transport it was made
// from: its wait for the auth ends there, and the auth's failure, when it comes, is nobody's
// (the resume asked for auth anew). The client held the session "connecting", on a probe that
// could never be answered, until the auth settled (its whole connectTimeout, for one that hangs),
// then counted the probe as one that failed, and its failure reached no `error` listener.
//
// Real client, real server behind a proxy that refuses WebSockets (the client lands on polling
// and probes WebSocket); the test moves the session itself, with a WebSocket of its own that
// says HELLO with the session's `sid`, as a probe whose answer was lost would have.
import { PacketType } from '@parley/protocol'
import { expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { client, next, parleyOf, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

it('resumes at once and drops the probe waiting on its auth, whose failure then goes unheard', async () => {
  const { server, proxy } = await proxied((app) =>
    parleyOf(app).on('connection', (socket) => {
      socket.on('echo', ((n: number, ack: (n: number) => void) => ack(n)) as (...args: never[]) => void)
    }),
  )
  proxy.ws = 'reject'
  // The session's `sid`, as the client's polling requests carry it.
  let sid: string | undefined
  const fetch: typeof globalThis.fetch = (input, init) => {
    const url = new URL(String(input))
    sid ??= url.searchParams.get('sid') ?? undefined
    return globalThis.fetch(input, init)
  }
  // The application's auth: a token, but while `hold` is set (the first probe's), a fetch that
  // fails once the test says.
  let hold = false
  let asked = 0
  let failProbe: (error: Error) => void = () => {}
  const socket = client(proxy.url, {
    transports: ['websocket', 'polling'],
    // The probe's auth is bounded by it: longer than the test waits for the resume.
    connectTimeout: 10_000,
    // Past STABLE_MS (2 s): polling is stable when MOVED comes, and the resume goes at once,
    // polling first, the one that works.
    upgradeDelay: 2500,
    fetch,
    auth: () => {
      asked++
      if (!hold) return 'token'
      hold = false
      return new Promise<string>((_, reject) => {
        failProbe = reject
      })
    },
  })
  const heard: string[] = []
  socket.on('transport', (now, before, why) => heard.push(`${before} -> ${now} (${why})`))
  socket.on('transport_error', (name, error) => heard.push(`transport_error ${name} ${error.code}`))
  socket.on('connect_error', (error) => heard.push(`connect_error ${error.code}`))
  socket.on('error', (error) => heard.push(`error ${error.code}`))
  socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
  await next(socket, 'connect', 5000)
  expect(socket.transport).toBe('polling')
  // What the connect heard (WebSocket refused) is not this test's.
  heard.length = 0
  const before = asked
  hold = true
  await until(() => asked === before + 1 && sid !== undefined, 5000, "the probe's auth")

  // The server takes the session onto a WebSocket of the test's: MOVED on polling.
  const taker = new WebSocket(`ws://127.0.0.1:${server.port}/parley/ws?v=1`, 'parley.v1')
  const opened = new Promise<string>((resolve, reject) => {
    taker.once('message', (data) => resolve(String(data)))
    taker.once('error', reject)
  })
  taker.once('open', () => taker.send(JSON.stringify([8, { sid, ack: 0 }])))
  const resumed = next<[string, string, string]>(socket, 'transport', 5000)
  expect(JSON.parse(await opened)[0]).toBe(PacketType.OPEN)
  // The client resumes on polling, the probe's auth still pending: the session comes back from
  // the test's WebSocket (the resume asked for auth anew, and got a token).
  expect(await resumed).toEqual(['polling', 'polling', 'resume'])
  expect(asked).toBe(before + 2)
  taker.close()

  // The probe's auth fails now: nothing is heard of it, and the session goes on.
  failProbe(new Error('token fetch failed'))
  expect(await socket.timeout(2000).emitWithAck('echo', 7)).toBe(7)
  expect(socket.connected).toBe(true)
  expect(heard).toEqual(['polling -> polling (resume)'])
})
