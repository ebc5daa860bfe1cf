// Requests that only the application's `rewriteUrl` brings to Parley's endpoints (`/rt/...`
// rewritten to `/parley/...`), while the app closes. Parley answers the endpoints' requests itself
// then, before Fastify, whose `return503OnClosing` answers everything else its bare 503 (no code,
// no CORS headers: a page on another origin cannot read it). Parley read the URL as written, not
// as `rewriteUrl` gives it: such a request went on to Fastify, and its bare 503, a new client's
// handshake as much as a session's GET waiting for its last words.

import { connect } from '@parley/client'
import { PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { closedAfterEach } from './closed-after-each.js'
import { gate } from './gate.js'
import { holding } from './held-events.js'
import { startServer, until, within } from './helpers.js'
import { exchange } from './http-exchange.js'

const opened = closedAfterEach()

/** `/rt` and what lies under it, read as `/parley` by the application's router. */
function rewriteUrl(req: { url?: string }): string {
  const url = req.url ?? '/'
  return url === '/rt' || url.startsWith('/rt/') || url.startsWith('/rt?') ? `/parley${url.slice(3)}` : url
}

/** A server whose `rewriteUrl` brings `/rt` to Parley, its close begun and held by a client's event. */
async function closingWithRewrite(onThrow?: () => void) {
  const hold = holding()
  const started = await startServer({}, (app) => void app.parley.on('connection', hold.onConnection), {
    rewriteUrl(req) {
      onThrow?.()
      return rewriteUrl(req)
    },
  })
  opened.started = started
  const origin = new URL(started.base).origin
  const client = connect(`${origin}/rt`, { transports: ['polling'], reconnection: false })
  opened.parleyClients.push(client)
  await within(
    new Promise<void>((resolve) => client.once('connect', () => resolve())),
    5000,
    'the client to connect at /rt',
  )
  client.emit('hold' as never)
  await until(() => hold.held === 1, 5000, "the client's event to wait in the middleware")
  const app = started.app
  opened.started = undefined
  const closing = app.close()
  onTestFinished(async () => {
    hold.release()
    await closing
  })
  await until(() => app.parley.closing, 5000, 'the close to begin')
  return { origin }
}

describe('a request at a URL the application rewrites to an endpoint, while the app closes', () => {
  it("gets Parley's coded 503, not Fastify's bare one: a new client's handshake", async () => {
    const { origin } = await closingWithRewrite()
    const answer = await exchange(`${origin}/rt/poll?v=1`, 'POST', { 'content-type': 'text/plain' }, '[8,{}]')
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })

  it('gets a coded 503 when the rewrite throws, as at a URL written as the endpoint', async () => {
    let throwing = false
    const { origin } = await closingWithRewrite(() => {
      if (throwing) throw new Error('the rewrite fails')
    })
    throwing = true
    const answer = await exchange(
      `${origin}/parley/poll?v=1`,
      'POST',
      { 'content-type': 'text/plain' },
      '[8,{}]',
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })
})

describe('a session at a URL the application rewrites, whose close ended it', () => {
  it('gets its CLOSE at its next GET there', async () => {
    const hold = holding()
    const started = await startServer({}, (app) => void app.parley.on('connection', hold.onConnection), {
      rewriteUrl,
    })
    opened.started = started
    const origin = new URL(started.base).origin
    // A session of a raw polling client: its GET is asked for by hand, once the close ended it.
    const open = await exchange(`${origin}/rt/poll?v=1`, 'POST', { 'content-type': 'text/plain' }, '[8,{}]')
    expect(open.status).toBe(200)
    const app = started.app
    opened.started = undefined
    const sid = [...app.parley.sockets.values()][0]?.session.sid
    expect(sid).toBeDefined()
    const closing = app.close()
    onTestFinished(async () => {
      hold.release()
      await closing
    })
    await until(
      () => app.parley.closing && app.parley.sockets.size === 0,
      5000,
      'the close to end the session',
    )
    const text = await within(
      fetch(`${origin}/rt/poll?v=1&sid=${sid}`).then(async (res) => ({
        status: res.status,
        body: await res.text(),
      })),
      5000,
      'the GET of the ended session',
    )
    expect(text.status).toBe(200)
    expect(packetsOf(text.body)).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
  })
})

describe("the Security section's Fastify: rewriteUrl folds the leading slashes, the router as it is", () => {
  it('hands the CLOSE to a session whose URL has slashes before the prefix', async () => {
    const app = Fastify({
      forceCloseConnections: true,
      rewriteUrl: (req) => (req.url ?? '/').replace(/^\/{2,}/, '/'),
    })
    let api: FastifyInstance | undefined
    await app.register(
      async (context) => {
        api = context
        await context.register(parley)
      },
      { prefix: '/api' },
    )
    opened.started = { app, base: '' }
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const endpoint = `http://127.0.0.1:${port}//api/parley/poll`
    const open = await exchange(`${endpoint}?v=1`, 'POST', { 'content-type': 'text/plain' }, '[8,{}]')
    expect(open.status).toBe(200)
    const sid = [...(api?.parley.sockets.values() ?? [])][0]?.session.sid
    opened.started = undefined
    const closing = app.close()
    onTestFinished(() => closing)
    await until(() => api?.parley.closed === true, 5000, 'the server closing')
    const res = await within(fetch(`${endpoint}?v=1&sid=${sid}`), 5000, 'the GET of the ended session')
    expect(res.status).toBe(200)
    expect(packetsOf(await res.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
  })
})

describe("the application's rewriteUrl, while two mount points of the instance close", () => {
  it("is called once for a request Parley answers, and once more only by Fastify's own for one it leaves", async () => {
    /** How many times the rewrite was called, by the request's URL as written. */
    const calls = new Map<string, number>()
    const app = Fastify({
      rewriteUrl(req) {
        const url = req.url ?? '/'
        calls.set(url, (calls.get(url) ?? 0) + 1)
        return url.startsWith('/rt/') ? `/a${url.slice(3)}` : url
      },
    })
    // Holds the close before either mount point's part of it: both answer their endpoints already.
    const hold = gate()
    app.addHook('preClose', () => hold.pass())
    for (const path of ['/a', '/b']) await app.register(async (context) => context.register(parley, { path }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const closing = app.close()
    onTestFinished(async () => {
      hold.open()
      await closing
    })
    await until(() => hold.reached(), 5000, "the close to reach the application's hook")

    // Judged by both mount points, answered by the one at /a.
    const answered = await exchange(
      `${origin}/rt/poll?v=1`,
      'POST',
      { 'content-type': 'text/plain' },
      '[8,{}]',
    )
    expect({ status: answered.status, code: answered.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
    // Judged by both, answered by neither: Fastify's 503, after its own call of the rewrite.
    const left = await exchange(`${origin}/elsewhere`, 'GET', {})
    expect(left.status).toBe(503)
    expect(Object.fromEntries(calls)).toEqual({ '/rt/poll?v=1': 1, '/elsewhere': 2 })
  })
})
