import { afterEach } from 'vitest'
import { closeApp, type Started } from './helpers.js'
import type { RawClient } from './raw-client.js'

/** What a test opened, for `closedAfterEach` to close. */
export interface Opened {
  /** The server the test started; one that closes it in its body takes it away first. */
  started: Started | undefined
  /** The raw clients it opened. */
  clients: RawClient[]
}

/**
 * For a file whose tests each start one server (and may open raw clients to it): after each test,
 * its clients are closed, then its server (`closeApp`: its sessions ended first).
 */
export function closedAfterEach(): Opened {
  const opened: Opened = { started: undefined, clients: [] }
  afterEach(async () => {
    for (const client of opened.clients.splice(0)) client.close()
    await closeApp(opened.started?.app)
    opened.started = undefined
  })
  return opened
}
