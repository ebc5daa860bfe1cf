// The `sseUpstream` option seen from the wire: which POST answers say `Connection: close`.
// (The client's side, that an SSE session carries on over new connections, is in the client's
// tests: packages/client/test/sse-upstream.test.ts.)
import http from 'node:http'
import { encodeText, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { startServer } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = closedAfterEach()

/** One POST on a connection of its own; what the answer's `Connection` header says. */
function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; connection: string | undefined; closeClient?: string }> {
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true })
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'text/plain', ...headers } },
      (res) => {
        res.resume()
        res.on('end', () => {
          agent.destroy()
          const closeClient = res.headers['x-parley-close-client'] as string | undefined
          resolve({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            ...(closeClient === undefined ? {} : { closeClient }),
          })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function sseSession(options: Parameters<typeof startServer>[0]) {
  opened.started = await startServer(options)
  const client = await rawConnect('sse', opened.started.base, {}, { autoPong: false })
  opened.clients.push(client)
  return `${opened.started.base}/sse?v=1&sid=${client.sid}`
}

describe("the server's sseUpstream option", () => {
  it("'close-when-idle': closes after a heartbeat's POST when nothing else was POSTed since the last one", async () => {
    const url = await sseSession({ sseUpstream: 'close-when-idle' })
    const pong = encodeText({ type: PacketType.PONG })
    const ack = encodeText({ type: PacketType.ACK, ack: 0 })
    const event = (seq: number) =>
      encodeText({ type: PacketType.EVENT, seq, name: 'hello', args: [], ackId: 0 })
    // Heartbeats alone (with the ACK a PING asks for): each closes its connection.
    expect(await post(url, pong)).toEqual({ status: 204, connection: 'close' })
    expect(await post(url, `${ack}\n${pong}`)).toEqual({ status: 204, connection: 'close' })
    // A client that talks keeps its connection, through the next heartbeat too.
    expect(await post(url, event(1))).toEqual({ status: 204, connection: 'keep-alive' })
    expect(await post(url, pong)).toEqual({ status: 204, connection: 'keep-alive' })
    // ...but not through one more, quiet, heartbeat.
    expect(await post(url, pong)).toEqual({ status: 204, connection: 'close' })
    // An ACK alone counts as talking (a receiving client), and so does an event beside the PONG.
    expect(await post(url, ack)).toEqual({ status: 204, connection: 'keep-alive' })
    expect(await post(url, pong)).toEqual({ status: 204, connection: 'keep-alive' })
    expect(await post(url, `${event(2)}\n${pong}`)).toEqual({ status: 204, connection: 'keep-alive' })
    expect(await post(url, pong)).toEqual({ status: 204, connection: 'close' })
  })

  it('keeps a connection that another node routed here (it carries other clients too), and asks that node to close its own', async () => {
    const url = await sseSession({ sseUpstream: 'close-when-idle' })
    expect(await post(url, '[3]', { 'x-parley-routed': '1' })).toEqual({
      status: 204,
      connection: 'keep-alive',
      closeClient: '1',
    })
    expect(
      await post(url, encodeText({ type: PacketType.EVENT, seq: 1, name: 'hello', args: [], ackId: 0 }), {
        'x-parley-routed': '1',
      }),
    ).toEqual({
      status: 204,
      connection: 'keep-alive',
    })
  })

  // By the owner's URL (as @parley/redis), or through the adapter's `routeRequest`.
  it.each([
    ['by URL', () => new Directory()],
    ['through routeRequest', () => new Cluster()],
  ])("is applied by the node that forwards a POST to the session's owner (%s)", async (_way, nodes) => {
    const cluster = nodes()
    const options = { sseUpstream: 'close-when-idle' } as const
    opened.started = await startServer({ ...options, adapter: cluster.adapter('a') })
    const other = await startServer({ ...options, adapter: cluster.adapter('b') })
    try {
      const client = await rawConnect('sse', opened.started.base, {}, { autoPong: false })
      opened.clients.push(client)
      // Sent to b, which forwards it to a, the owner.
      const url = `${other.base}/sse?v=1&sid=${client.sid}`
      const pong = encodeText({ type: PacketType.PONG })
      expect(await post(url, pong)).toEqual({ status: 204, connection: 'close' })
      expect(
        await post(url, encodeText({ type: PacketType.EVENT, seq: 1, name: 'hello', args: [], ackId: 0 })),
      ).toEqual({ status: 204, connection: 'keep-alive' })
      expect(await post(url, pong)).toEqual({ status: 204, connection: 'keep-alive' })
      expect(await post(url, pong)).toEqual({ status: 204, connection: 'close' })
    } finally {
      await other.app.close()
    }
  })

  it("'keep-alive' (the default) keeps every POST's connection", async () => {
    const url = await sseSession({})
    expect(await post(url, '[3]')).toEqual({ status: 204, connection: 'keep-alive' })
  })

  it('leaves polling alone: its PONG comes in a GET, and its POSTs keep their connection', async () => {
    opened.started = await startServer({ sseUpstream: 'close-when-idle' })
    const client = await rawConnect('polling', opened.started.base, {}, { autoPong: false })
    opened.clients.push(client)
    const url = `${opened.started.base}/poll?v=1&sid=${client.sid}`
    expect(await post(url, '[3]')).toEqual({ status: 204, connection: 'keep-alive' })
  })
})
