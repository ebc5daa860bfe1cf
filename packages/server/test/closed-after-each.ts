import type { Socket } from '@parley/client'
import { afterEach } from 'vitest'
import { closeApp, type Started } from './helpers.js'
import type { RawClient } from './raw-client.js'
import type { RawHttp } from './raw-http.js'

/** What a test opened, for `closedAfterEach` to close. */
export interface Opened {
  /** The server the test started; one that closes it in its body takes it away first. */
  started: Started | undefined
  /** The raw clients it opened. */
  clients: RawClient[]
  /** The Parley clients it connected (of any event maps: only `disconnect` is called). */
  parleyClients: Pick<Socket, 'disconnect'>[]
  /** The raw HTTP connections it opened. */
  rawHttp: RawHttp[]
}

/**
 * For a file whose tests each start one server (and may open clients to it): after each test, its
 * Parley clients are disconnected, its raw clients closed and its raw HTTP connections destroyed,
 * then its server is closed (`closeApp`: its sessions ended first).
 */
export function closedAfterEach(): Opened {
  const opened: Opened = { started: undefined, clients: [], parleyClients: [], rawHttp: [] }
  afterEach(async () => {
    for (const client of opened.parleyClients.splice(0)) client.disconnect()
    for (const client of opened.clients.splice(0)) client.close()
    for (const raw of opened.rawHttp.splice(0)) raw.destroy()
    await closeApp(opened.started?.app)
    opened.started = undefined
  })
  return opened
}
