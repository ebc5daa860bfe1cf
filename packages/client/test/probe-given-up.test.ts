// An event-stream probe that the client gives up while the stream's first bytes are on their
// way timed nothing out: it must not mark the stream stalled, which would keep the client from
// climbing back to it for a minute (see TransportMemory).
import { expect, it } from 'vitest'
import { client, memoryStorage, next, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

it('climbs to an event stream whose probe it gave up while the first bytes were held', async () => {
  // Heartbeat window 2 s (startServer): the silence that loses polling below.
  const { proxy } = await proxied()
  const socket = client(proxy.url, {
    storage: memoryStorage(),
    transports: ['polling', 'sse'],
    // The probe's own bound, far past the heartbeat window: only the client gives it up.
    connectTimeout: 8000,
    upgradeDelay: 300,
  })
  await next(socket, 'connect')
  expect(socket.transport).toBe('polling')
  // Nothing reaches the client from now on: the probe's stream sends no first bytes, and
  // polling, silent, is lost; the client then gives the probe up.
  const release = proxy.hold()
  const lost = next(socket, 'transport_error', 6000)
  await until(() => proxy.streams >= 1, 5000, 'the probe to open its stream')
  expect((await lost)[0]).toBe('polling')
  // The resume tries the stream first, which now fails at once (no event stream: no stall),
  // and lands on polling again.
  proxy.sse = 'page'
  release()
  await until(() => socket.connected && socket.transport === 'polling', 5000, 'the resume on polling')
  // The stream works again: the next probe, after upgradeDelay, takes the client onto it. A
  // stall marked for the probe given up held every probe back for FIRST_STALL_TTL.
  proxy.sse = 'pass'
  await until(() => socket.transport === 'sse', 5000, 'the climb to the event stream')
}, 30_000)
