// An upgrade probe's `auth` that never settles, while the transport in use is lost: the probe is
// dropped with that transport, and its wait for the auth must end with it. The auth's own bound
// (connectTimeout) was cleared by the loss, so the probe's code waited for good, holding its
// transport, as long as the application held the auth's promise (a token fetch kept and shared,
// left hanging). Nor may it keep a later probe from climbing. Real client, real server, a proxy
// that refuses WebSockets and then cuts polling's requests.
//
// What is left behind is read on the heap (`queryObjects`, after a full collection): the client
// says nothing of a probe it dropped.
import { queryObjects, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { expect, it } from 'vitest'
import { WebSocketTransport } from '../src/transports/websocket.js'
import { client, next, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

/** Live WebSocket transports, after a full collection between turns of the event loop. */
async function liveWebSocketTransports(): Promise<number> {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
  return queryObjects(WebSocketTransport, { format: 'count' }) as number
}

it('ends the wait of a probe whose auth hangs when the transport is lost, and climbs later', async () => {
  // No heartbeat lapses while the test runs: on a loaded machine the full collections that count
  // the transports below can take seconds, past the 2 s of the usual test timings, and the client
  // would drop the WebSocket it counts for silence. The heartbeat is not what is tested here.
  const { proxy } = await proxied(undefined, { pingInterval: 20_000, pingTimeout: 20_000 })
  // WebSocket refused at its upgrade: the client lands on polling, and probes it later.
  proxy.ws = 'reject'
  // The application's auth: a token, but while `hang` is set, a fetch that never ends, kept.
  let hang = false
  const hanging: Promise<string>[] = []
  const socket = client(proxy.url, {
    transports: ['websocket', 'polling'],
    connectTimeout: 5000,
    upgradeDelay: 300,
    upgradeDelayMax: 300,
    auth: () => {
      if (!hang) return 'token'
      hang = false
      const fetching = new Promise<string>(() => {})
      hanging.push(fetching)
      return fetching
    },
  })
  let polls = 0
  socket.on('transport_error', (name) => {
    if (name === 'polling') polls++
  })
  await next(socket, 'connect', 5000)
  expect(socket.transport).toBe('polling')
  // The next probe's auth hangs.
  hang = true
  await until(() => hanging.length === 1, 5000, "the probe's auth")
  // Polling is lost meanwhile (a poll may not be held at the first cut: until one is), and the
  // session resumes on it.
  const resumed = next(socket, 'transport', 5000)
  for (let i = 0; i < 100 && polls === 0; i++) {
    proxy.cut('http')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  expect((await resumed).slice(0, 3)).toEqual(['polling', 'polling', 'resume'])
  // WebSocket lets through from now on: a later probe climbs.
  proxy.ws = 'pass'
  const [now, before, why] = await next<[string, string, string]>(socket, 'transport', 5000)
  expect([now, before, why]).toEqual(['websocket', 'polling', 'upgrade'])
  // The WebSocket in use, and no other: the dropped probe's transport is not held.
  expect(await liveWebSocketTransports()).toBe(1)
}, 25_000)
