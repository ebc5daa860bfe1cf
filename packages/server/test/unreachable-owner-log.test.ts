// The warning of requests that could not be forwarded to the node owning their session, through
// an adapter's `routeRequest` (an owner without a URL): its words are true of a client that is
// still there to be answered and of one that left before the adapter gave up.
import { type AdapterFactory, MemoryAdapter, type RoutedRequest } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'

const WARNING =
  'parley: 1 request(s) or resume(s) could not be forwarded to the node that owns their session, since the last such line; this node answered each itself (as for an unknown session; as after its handoff, for a session its node was handing off; or with a try again, for a resume whose session moved on meanwhile), but for those whose client had left by then, which nobody answered'

const opened = closedAfterEach()

interface LogLine {
  msg: string
  node?: string
  count?: number
}

/**
 * A server whose adapter names another node, without a URL, as the owner of every session, and
 * whose `routeRequest` rejects once the test says so; its warnings in `logs`, and whether the
 * client's connection has closed on the server's side.
 */
async function ownerUnreached() {
  const logs: LogLine[] = []
  const routed: RoutedRequest[] = []
  let reject = (_err: Error) => {}
  const rejected = new Promise<never>((_resolve, fail) => {
    reject = fail
  })
  rejected.catch(() => {})
  const factory: AdapterFactory = (sockets) =>
    Object.assign(new MemoryAdapter(sockets), {
      sessionOwner: () => ({ node: 'elsewhere' }),
      routeRequest: (_node: string, request: RoutedRequest) => {
        routed.push(request)
        return rejected
      },
    })
  const left = { closed: false }
  const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  opened.started = await startServer(
    { adapter: factory },
    (app) => {
      app.addHook('onRequest', async (_request, reply) => {
        reply.raw.once('close', () => {
          left.closed ||= !reply.raw.writableEnded
        })
      })
    },
    { logger },
  )
  return { logs, routed, reject, left, base: opened.started.base }
}

const about = (logs: LogLine[]) => logs.filter(({ msg }) => msg.includes('could not be forwarded'))

describe('a request whose owner the adapter could not reach', () => {
  it('is answered as for an unknown session while its client is there, and the warning says so', async () => {
    const { logs, routed, reject, base } = await ownerUnreached()
    const answer = fetch(`${base}/poll?v=1&sid=someoneElsesSession1`)
    await until(() => routed.length === 1, 3000, 'the request routed')
    reject(new Error('no route to that node'))
    const res = await within(answer, 3000, 'the answer')
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
    await until(() => about(logs).length === 1, 3000, 'the warning')
    expect(about(logs)).toMatchObject([{ msg: WARNING, node: 'elsewhere', count: 1 }])
  })

  it('is answered to nobody when its client left first, which the warning says too', async () => {
    const { logs, routed, reject, left, base } = await ownerUnreached()
    const abort = new AbortController()
    const answer = fetch(`${base}/poll?v=1&sid=someoneElsesSession2`, { signal: abort.signal }).catch(
      (e: unknown) => e,
    )
    await until(() => routed.length === 1, 3000, 'the request routed')
    abort.abort()
    await answer
    await until(() => left.closed, 3000, 'the server to see the client leave')
    reject(new Error('no route to that node'))
    await until(() => about(logs).length === 1, 3000, 'the warning')
    expect(about(logs)).toMatchObject([{ msg: WARNING, node: 'elsewhere', count: 1 }])
    expect(opened.started!.app.parley.unreachableOwnerCount).toBe(1)
  })
})
