// A reconnectionDelay or reconnectionDelayMax of 0 must not make a client try again the moment
// each attempt fails: the backoff's cap has a floor (WAIT_FLOOR_MS), under the jitter.
import { expect, it } from 'vitest'
import { client, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

// No jitter: every wait is then the cap itself, and the count below has a bound it cannot pass.
it.each([
  { reconnectionDelayMax: 0, randomization: 0 },
  { reconnectionDelay: 0, randomization: 0 },
])('backs off between failed attempts with %j', async (options) => {
  const { proxy } = await proxied()
  // A balancer with no node to offer: every attempt is turned away, and worth trying again.
  proxy.unavailable = 503
  const socket = client(proxy.url, options)
  let attempts = 0
  socket.on('reconnect_attempt', () => attempts++)
  await until(() => attempts >= 1, 3000, 'the first reconnection attempt')
  const before = attempts
  // 100 ms at least between attempts: fifteen at most in this second and a half, one more at
  // its edges. With a cap of 0, each attempt (its transports turned away one after another)
  // followed the one before the moment it failed: 25 to 70 here, 150 to 420 requests.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  expect(attempts - before).toBeLessThanOrEqual(16)
  expect(socket.connected).toBe(false)
})
