// A new session over SSE or polling whose OPEN (the answer to the handshake POST) may never have
// reached its client: the server waits for the client's first request for handshakeTimeout +
// pingInterval + pingTimeout after the OPEN, then ends it. These tests speak the wire: a HELLO
// whose answer the test drops, a GET that comes late and carries no ack. The real client against the real server, through a proxy that cuts
// the answer: packages/client/test/lost-open.test.ts.
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'

const opened = closedAfterEach()

const HEARTBEAT = { pingInterval: 1000, pingTimeout: 500, handshakeTimeout: 500 }
/** How long a new session waits for its client's first request. */
const BOUND = HEARTBEAT.handshakeTimeout + HEARTBEAT.pingInterval + HEARTBEAT.pingTimeout

/** A server recording each socket's id and, once it ended, why. */
async function recording(options: Parameters<typeof startServer>[0] = {}) {
  const ids: string[] = []
  const ended = new Map<string, string>()
  opened.started = await startServer(options, (app) => {
    app.parley.on('connection', (socket) => {
      ids.push(socket.id)
      socket.on('disconnect', (reason) => ended.set(socket.id, reason))
    })
  })
  return { base: opened.started.base, ids, ended }
}

/** A HELLO over `kind`: the sid of the session it opened, its answer read by no client. */
async function hello(base: string, kind: 'sse' | 'poll'): Promise<string> {
  const res = await fetch(`${base}/${kind}?v=1`, { method: 'POST', body: '[8,{}]' })
  return (JSON.parse(await res.text()) as [number, { sid: string }])[1].sid
}

describe.each(['sse', 'poll'] as const)('a new session over %s, before its client came', (kind) => {
  it('ends with transport close once handshakeTimeout + pingInterval + pingTimeout passed without a request', async () => {
    const { base, ids, ended } = await recording(HEARTBEAT)
    const sid = await hello(base, kind)
    await until(() => ids.length === 1, 2000, 'the connection')
    await until(() => ended.size === 1, 3 * BOUND, 'the session to end')
    expect(ended.get(ids[0]!)).toBe('transport close')
    // A resume that comes after all is told why, as for any session that ended.
    const resumed = await fetch(`${base}/${kind}?v=1`, { method: 'POST', body: `[8,{"sid":"${sid}"}]` })
    expect(await resumed.text()).toBe(
      '[1,"transport close","no request came for the new session within handshakeTimeout + pingInterval + pingTimeout of its OPEN"]',
    )
  })

  it('lives on after a GET without an ack, late within the bound', async () => {
    const { base, ids, ended } = await recording(HEARTBEAT)
    const sid = await hello(base, kind)
    await new Promise((resolve) => setTimeout(resolve, BOUND / 3))
    const abort = new AbortController()
    const get = fetch(`${base}/${kind}?v=1&sid=${sid}`, { signal: abort.signal }).then(
      (res) => res.status,
      () => 'aborted',
    )
    // A session opened after it, which no client comes for: once it ended, the first one's
    // bound has passed too.
    await hello(base, kind)
    await until(() => ended.size === 1, 3 * BOUND, 'the later session to end')
    expect([...ended.keys()]).toEqual([ids[1]])
    expect(opened.started!.app.parley.sockets.has(ids[0]!)).toBe(true)
    abort.abort()
    expect(await get).not.toBe(400)
  })

  it('lives on after a POST that came first', async () => {
    const { base, ids, ended } = await recording(HEARTBEAT)
    const sid = await hello(base, kind)
    const post = await fetch(`${base}/${kind}?v=1&sid=${sid}`, { method: 'POST', body: '[3]' })
    expect(post.status).toBe(204)
    await hello(base, kind)
    await until(() => ended.size === 1, 3 * BOUND, 'the later session to end')
    expect([...ended.keys()]).toEqual([ids[1]])
  })
})
