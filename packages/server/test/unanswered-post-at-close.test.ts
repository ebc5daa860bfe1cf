// A POST a closing node sent on to the node that holds its session, through the adapter
// (`routeRequest`, an owner without a URL), which that node has not answered when the time the
// close gives what it forwards (2 s) is over: the client is told to try again (503
// PARLEY_SERVER_SHUTTING_DOWN), as for a POST the node can no longer send on, where its
// connection was cut and its transport failed with no code. (Over the network, to an owner with
// a URL: packages/redis/test/post-across-close.test.ts.)
import { ErrorCode, encodeText, PacketType } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'

const started: Started[] = []
afterEach(async () => {
  for (const node of started.splice(0)) await closeApp(node.app)
})

it('answers 503 PARLEY_SERVER_SHUTTING_DOWN to a POST sent on through the adapter whose owner has not answered when the close is over', async () => {
  const cluster = new Cluster()
  const a = await startServer({ adapter: cluster.adapter('a') })
  started.push(a)
  // b holds the POSTs another node sends it while `gate` is set, before it reads them.
  let gate: Promise<void> | undefined
  let open = () => {}
  let held = 0
  const b = await startServer({ adapter: cluster.adapter('b') }, (app) => {
    app.addHook('onRequest', async (request) => {
      if (!gate || request.method !== 'POST' || request.headers['x-parley-routed'] === undefined) return
      held++
      await gate
    })
  })
  started.push(b)
  const opened = await fetch(`${b.base}/poll?v=1`, {
    method: 'POST',
    body: JSON.stringify([PacketType.HELLO, {}]),
  })
  const [, hello] = JSON.parse(await opened.text()) as [number, { sid: string }]
  gate = new Promise((resolve) => (open = resolve))

  const post = fetch(`${a.base}/poll?v=1&sid=${hello.sid}`, {
    method: 'POST',
    body: encodeText({ type: PacketType.EVENT, seq: 1, name: 'up', args: [1], ackId: 0 }),
  }).then(
    async (res) => ({ status: res.status, body: (await res.json()) as { code?: string } }),
    (err: unknown) => ({ status: 0, body: { code: String((err as Error).cause ?? err) } }),
  )
  let answer: Awaited<typeof post>
  try {
    await until(() => held === 1, 3000, 'the POST, held on b')
    const closing = a.app.close()
    answer = await within(post, 5000, 'the answer to the POST')
    await within(closing, 5000, 'a closed')
  } finally {
    // Let go even when a wait above failed: held, the POST would keep b's close waiting.
    open()
  }

  expect(answer.status).toBe(503)
  expect(answer.body.code).toBe(ErrorCode.SERVER_SHUTTING_DOWN)
})
