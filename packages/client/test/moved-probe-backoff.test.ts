// A transport that the server leaves for a probe (MOVED while the probe waits for its OPEN) was
// not up for STABLE_MS: the backoff must not start over for it. Real client, real server, and a
// proxy that cuts polling's requests (a flapping network) and mutes the WebSocket probe's answer.
//
// The backoff counts every failed or quick way back since the last transport that stayed up for
// STABLE_MS; `reconnect_attempt` says that count once the session is down. A timer of the
// transport left behind, still running while the probe waited, said it was stable and started the
// count over: a flapping network then retried at the first delay again.
import { expect, it } from 'vitest'
import { client, next, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

it('a transport left for a probe before it was up for STABLE_MS does not reset the backoff', async () => {
  const { proxy } = await proxied(undefined, { pingInterval: 5000, pingTimeout: 5000 })
  // WebSocket refused at its upgrade: the client lands on polling, and its probes fail at once
  // (not taken, nothing to resume).
  proxy.ws = 'reject'
  const socket = client(proxy.url, {
    transports: ['websocket', 'polling'],
    // The probe that the server takes waits this long for its OPEN: past STABLE_MS.
    connectTimeout: 3000,
    upgradeDelay: 100,
    upgradeDelayMax: 100,
    reconnectionDelay: 100,
    reconnectionDelayMax: 100,
    randomization: 0,
  })
  const said: string[] = []
  socket.on('transport', (now, before, why) => {
    said.push(`${before} -> ${now} (${why})`)
    // The probe that follows the resume must not be taken too.
    proxy.ws = 'reject'
  })
  let losses = 0
  socket.on('transport_error', (name) => {
    if (name === 'polling') losses++
  })
  /** Cuts polling's requests until one is cut: a poll may not be held at the first cut. */
  const lose = async () => {
    const before = losses
    for (let i = 0; i < 100 && losses === before; i++) {
      proxy.cut('http')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const attempts: number[] = []
  socket.on('reconnect_attempt', (n) => attempts.push(n))
  await next(socket, 'connect', 5000)
  expect(socket.transport).toBe('polling')

  // Two quick losses: the backoff counts two.
  for (let i = 0; i < 2; i++) {
    const resumed = next(socket, 'transport', 5000)
    await lose()
    await resumed
  }
  // Within STABLE_MS of that resume, the next probe upgrades and its HELLO reaches the server,
  // which moves the session onto it (MOVED on polling); its OPEN never comes back. The client
  // gives up on it after connectTimeout and resumes on polling at once (the server took the
  // probe: nothing failed), more than STABLE_MS after polling opened.
  proxy.ws = 'mute'
  const resumed = next(socket, 'transport', 10_000)
  expect(await resumed).toEqual(['polling', 'polling', 'resume'])
  // Lost again at once, and nothing gets through: a third quick loss, then a failed resume (the
  // fourth), then the first reconnection attempt counts four.
  proxy.offline = true
  proxy.cut('all')
  await until(() => attempts.length > 0, 5000, 'a reconnection attempt')
  expect(said).toEqual([
    'polling -> polling (resume)',
    'polling -> polling (resume)',
    'polling -> polling (resume)',
  ])
  expect(attempts[0]).toBe(4)
}, 40_000)
