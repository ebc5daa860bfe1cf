// An instance whose close a test begins in its body and holds at a preClose hook of the
// application's (a `Gate`), before or behind Parley's own, with a polling client on it: the frame
// of the tests of what Parley does while such a hook runs. What a test opened is let go after it.

import { connect, type Socket } from '@parley/client'
import parley, { type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach } from 'vitest'
import type { Gate } from './gate.js'
import { within } from './helpers.js'

/** What a test opened: its instance, its close (begun in the test), its client, its gate. */
export interface HeldClose {
  app: FastifyInstance | undefined
  closed: Promise<unknown> | undefined
  client: Socket | undefined
  held: Gate | undefined
}

/**
 * What each test of the file opens, let go after it: its gate opened (a hook held there would hold
 * the close), its client disconnected, its instance closed unless the test began that, and the
 * close awaited, whether it fails or not (some tests make it fail).
 */
export function heldCloseAfterEach(): HeldClose {
  const opened: HeldClose = { app: undefined, closed: undefined, client: undefined, held: undefined }
  afterEach(async () => {
    opened.held?.open()
    opened.client?.disconnect()
    if (opened.app && !opened.closed) opened.closed = opened.app.close()
    await opened.closed?.catch(() => {})
    opened.app = opened.closed = opened.client = opened.held = undefined
  })
  return opened
}

/**
 * An instance with Parley at `/parley` (given `options`), listening on loopback, kept in `opened`;
 * `before` adds the application's hooks ahead of Parley's registration, `after` behind it (its
 * `connection` listeners, say). A polling client that never reconnects, connected to it.
 */
export async function startHeld(
  opened: HeldClose,
  own: {
    before?: (instance: FastifyInstance) => void
    after?: (instance: FastifyInstance) => void
    pluginTimeout?: number | undefined
    options?: Omit<ParleyServerOptions, 'path'>
  } = {},
): Promise<{ instance: FastifyInstance; base: string; client: Socket }> {
  const instance = Fastify(own.pluginTimeout === undefined ? {} : { pluginTimeout: own.pluginTimeout })
  opened.app = instance
  own.before?.(instance)
  await instance.register(parley, { path: '/parley', ...own.options })
  own.after?.(instance)
  await instance.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(instance.server.address() as { port: number }).port}/parley`
  const client = connect(base, { transports: ['polling'], reconnection: false })
  opened.client = client
  await within(
    new Promise<void>((resolve) => client.once('connect', () => resolve())),
    5000,
    'the client to connect',
  )
  return { instance, base, client }
}

/** Whether `promise` has settled, read once the turn's callbacks have run. */
export function settled(promise: Promise<unknown>): () => boolean {
  let done = false
  const mark = () => {
    done = true
  }
  promise.then(mark, mark)
  return () => done
}

/** Begins `instance`'s close in the test's body; kept in `opened`, for the teardown to await too. */
export function beginClose(opened: HeldClose, instance: FastifyInstance): Promise<unknown> {
  const closed = instance.close()
  opened.closed = closed
  return closed
}
