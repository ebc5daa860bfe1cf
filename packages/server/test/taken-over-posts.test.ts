// A POST that reaches a draining node for a session it handed off and another node has taken
// over since, its CLOSE 'server handoff' still waiting there for the client's next GET. The
// route sends it on to the node that holds the session now, and so does the closing path while
// Fastify refuses requests: never a 204 for packets nobody used (the client would take them for
// delivered, and the node that holds the session would find a gap after them). A POST of a session that ended there, its ACK and CLOSE
// waiting for the next GET, still gets its 204, unread, so that the client reads them.
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { exchange } from './http-exchange.js'

const PAGE = 'http://page.test'

const started: Started[] = []
afterEach(async () => {
  for (const node of started.splice(0)) await closeApp(node.app)
})

/** A session opened by its handshake POST alone on `path`: no GET of its client waits. */
async function handshake(
  base: string,
  path: string,
  hello: object = {},
): Promise<{ sid: string; id: string }> {
  const res = await fetch(`${base}/${path}?v=1`, { method: 'POST', body: JSON.stringify([8, hello]) })
  const text = await res.text()
  const open = JSON.parse(text) as [number, { sid: string; id: string; recovered?: boolean }]
  if (open[0] !== PacketType.OPEN) throw new Error(`no OPEN: ${text}`)
  return open[1]
}

describe.each(['sse', 'poll'] as const)(
  'a POST of a session taken over elsewhere, on the node that handed it off (/%s)',
  (path) => {
    /**
     * The answer node `a` gives a POST of a session node `b` took over from its drain, and the
     * events `b` handled, with `return503OnClosing` set so on `a`'s Fastify.
     */
    async function postToOldNode(return503OnClosing: boolean) {
      const cluster = new Cluster({ handoff: true })
      const received: unknown[] = []
      const a = await startServer(
        { adapter: cluster.adapter('a'), allowedOrigins: [PAGE], handoff: { timeout: 5000 } },
        undefined,
        { return503OnClosing },
      )
      started.push(a)
      const b = await startServer({ adapter: cluster.adapter('b'), allowedOrigins: [PAGE] }, (app) => {
        app.parley.on('restored', (socket) => socket.on('up', (n: unknown) => received.push(n)))
      })
      started.push(b)
      const moved = await handshake(a.base, path)
      // Never resumed: it keeps the drain waiting for claims while the test runs.
      const staying = await handshake(a.base, path)
      const closing = a.app.close()
      try {
        await until(
          () =>
            cluster.handoffs.get(moved.sid)?.stored === true &&
            cluster.handoffs.get(staying.sid)?.stored === true,
          3000,
          'both sessions stored',
        )
        // The client resumes on b, which takes the session over; a's CLOSE 'server handoff'
        // still waits for a GET there.
        const back = await handshake(b.base, path, { sid: moved.sid, ack: 0 })
        expect(back).toMatchObject({ sid: moved.sid, id: moved.id, recovered: true })
        await until(() => a.app.parley.sessionFor(moved.sid) === undefined, 3000, 'a letting the session go')

        const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'up', args: [1], ackId: 0 })
        const answer = await exchange(
          `${a.base}/${path}?v=1&sid=${moved.sid}`,
          'POST',
          { Origin: PAGE },
          event,
        )
        // What b made of it, had a sent it on: in the same turn as any packet it takes.
        await new Promise((resolve) => setImmediate(resolve))
        return {
          status: answer.status,
          code: answer.body.code,
          allowOrigin: answer.headers['access-control-allow-origin'],
          received: [...received],
        }
      } finally {
        a.app.parley.sockets.get(staying.id)?.disconnect()
        await closing
      }
    }

    it.each([
      ['by the route', false],
      ['by the closing path, while Fastify refuses requests', true],
    ])("is sent on to the session's node %s, and answered 204 once used there", async (_, refusing) => {
      expect(await postToOldNode(refusing)).toEqual({
        status: 204,
        code: undefined,
        allowOrigin: PAGE,
        received: [1],
      })
    })
  },
)

describe.each(['sse', 'poll'] as const)(
  'a POST of a session ended at close, its CLOSE waiting (/%s)',
  (path) => {
    it('still gets 204, unread, and the next GET its CLOSE', async () => {
      const node = await startServer({ allowedOrigins: [PAGE] })
      started.push(node)
      const { sid } = await handshake(node.base, path)
      const closing = node.app.close()
      try {
        // Ended with CLOSE 'server shutdown', which waits for the client's first GET.
        await until(() => node.app.parley.sessionFor(sid) === undefined, 3000, 'the session ended')
        const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'up', args: [1], ackId: 0 })
        const answer = await exchange(`${node.base}/${path}?v=1&sid=${sid}`, 'POST', { Origin: PAGE }, event)
        expect(answer.status).toBe(204)
        const last = await fetch(`${node.base}/${path}?v=1&sid=${sid}`, { headers: { Origin: PAGE } })
        expect(await last.text()).toContain('"server shutdown"')
      } finally {
        await closing
      }
    })
  },
)
