// A restart on a shared server whose boot has yet to reach Parley's onReady hook (a plugin of the
// application's registered after Parley still loading) when the old instance's close ends. Such
// an instance serves nobody yet, and its boot may never end (a plugin that throws at its
// registration, which Parley never hears of): the old one, the last to serve on the server, ends
// the server's idle kept-alive connections at its close, rather than leaving them to Node's
// keep-alive timeout. The restart, once booted, counts the server's connections afresh: it keeps
// its own alive between requests, where the tracking it shared with the old one, closed under it,
// ended each after its first answer.

import type { FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { gate } from './gate.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { head, type RawAnswer, RawHttp } from './raw-http.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'

type Shared = Awaited<ReturnType<typeof restartableServer>>

/** A route of the application's beside Parley, answered at once. */
function quickRoute(app: FastifyInstance): void {
  app.get('/quick', async () => 'quick')
}

/**
 * The old instance on a restartable server, its close begun and held by its polling client's
 * event until `closed` is called, and a restart on the server whose boot waits at a plugin
 * registered after Parley until `booted` is called. `kept`: a connection kept alive by the old
 * instance before its close began.
 */
async function restartStillBooting() {
  const shared = await restartableServer(true)
  const olds = holding()
  const old = await shared.make('old', olds.onConnection, quickRoute)
  shared.serve(old)
  const kept = await keptAlive(shared)
  const { client } = await shared.connect('polling')
  const { closing } = await beginHeldClose(old, olds, client, 'the old instance')
  const loading = gate()
  onTestFinished(() => loading.open())
  const making = shared.make('new', undefined, (app) => {
    quickRoute(app)
    app.register(async () => loading.pass())
  })
  onTestFinished(async () => {
    loading.open()
    await making
  })
  await until(() => loading.reached(), 5000, "the restart's boot to reach the plugin after Parley")
  return {
    shared,
    kept,
    /** Lets the old instance's close end. */
    async closed() {
      olds.release()
      await within(closing, 5000, 'the old instance to close')
    },
    /** Lets the restart's boot end, and gives it the server's requests. */
    async booted() {
      loading.open()
      const restarted = await within(making, 5000, 'the restart to boot')
      shared.serve(restarted)
      return restarted
    },
  }
}

/** A connection to `shared` that asked `/quick` once and was answered. */
async function keptAlive(shared: Shared): Promise<RawHttp> {
  const connection = await RawHttp.open(shared.port)
  onTestFinished(() => connection.destroy())
  connection.write(head('GET', '/quick'))
  expect((await connection.answer()).status).toBe(200)
  return connection
}

/** The next answer on `connection`, after `first`. */
function answerAfter(connection: RawHttp, first: RawAnswer): Promise<RawAnswer> {
  connection.received = connection.received.slice(
    connection.received.indexOf('\r\n\r\n') + 4 + Buffer.byteLength(first.body),
  )
  return connection.answer()
}

describe('a restart whose boot has yet to reach Parley when the old instance has closed', () => {
  it('leaves the old one, the last serving on the server, to end its idle kept-alive connections', async () => {
    const { kept, closed } = await restartStillBooting()
    await closed()
    await within(kept.closed, 3000, "the idle connection to end with the old instance's close")
  })

  it('keeps its own connections alive between requests once booted', async () => {
    const { shared, closed, booted } = await restartStillBooting()
    await closed()
    await booted()
    const connection = await keptAlive(shared)
    const first = await connection.answer()
    connection.write(head('GET', '/quick'))
    expect((await answerAfter(connection, first)).status).toBe(200)
    expect(connection.isClosed).toBe(false)
  })
})
