// A deployment of one node restarting, with handoff: no other node can claim the sessions, so the
// drain seals them at once and the node closes. A client whose first GET after its HELLO was still
// on its way (an OPEN slow to reach it, a GET a browser held back a moment) gets its CLOSE
// 'server handoff' in that GET, and resumes quietly on the next process. The close waits for such
// a GET as it does for the one that is to carry a CLOSE 'server shutdown': the client's usual time
// for it (a second after its handshake, for a first GET), 2 s at the most. It did not: the GET
// found the node gone, the client resumed at once, without the quiet time after a handoff, that
// resume found no node either, and the application heard `disconnect` in the middle of a restart.
// Real client, real servers (the in-process adapter's store stands in for Redis); the client's
// `fetch` holds back its first GET after the HELLO until the test lets it go.
import { connect, type Socket } from '@parley/client'
import type { ParleyServerOptions } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'

let nodes: Started[] = []
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await sleep(50)
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/** How long the test holds the first GET back at most, once the drain has sealed the session. */
const HELD_MS = 200

describe.each(['polling', 'sse'] as const)(
  'a lone node restarting while a first GET over %s is on its way',
  (transport) => {
    it('waits for that GET, which carries the CLOSE: the client resumes on the next process, no word of a disconnect', async () => {
      const cluster = new Cluster({ handoff: true })
      const options: ParleyServerOptions = { handoff: { timeout: 5000, retrySpread: 0 } }
      const a = await startServer({ adapter: cluster.adapter('a'), ...options })
      nodes.push(a)
      const port = Number(new URL(a.base).port)

      // The first GET after the HELLO waits for `release`; `sid` is the session it is for.
      let release = () => {}
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let sid: string | undefined
      let gets = 0
      /** HELLOs that found no node listening. */
      let unheard = 0
      const holding: typeof fetch = async (input, init) => {
        const get = (init?.method ?? 'GET') === 'GET'
        if (get && gets++ === 0) {
          sid = new URL(String(input)).searchParams.get('sid') ?? undefined
          await held
        }
        const hello = !get && !String(input).includes('sid=')
        return fetch(input, init).catch((err: unknown) => {
          if (hello) unheard++
          throw err
        })
      }
      const c = connect(a.base, { transports: [transport], fetch: holding, connectTimeout: 5000 })
      clients.push(c)
      const said: string[] = []
      c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
      c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
      let connects = 0
      c.on('connect', () => connects++)
      await until(() => sid !== undefined, 3000, 'the first GET')

      let closed = false
      const closing = a.app.close().then(() => {
        closed = true
      })
      await until(
        () => cluster.handoffs.get(sid!)?.sealed === true,
        3000,
        'the session sealed, no node to claim it',
      )
      // Let go once the node has closed, or after HELD_MS: a close that waits for the GET is still
      // under way then, and one that does not is over long before.
      await Promise.race([closing, sleep(HELD_MS)])
      release()
      await within(closing, 5000, 'the close')
      expect(closed).toBe(true)

      // The next process takes a moment to start: the client's tries meanwhile find nothing.
      await until(() => unheard >= 2, 10_000, 'two tries at the address with no node')
      // On the same address: the client's resume claims the session there.
      const next = await startServer({ adapter: cluster.adapter('a2'), ...options }, undefined, {}, port)
      nodes.push(next)
      await until(() => c.connected, 15_000, 'the client on the next process')
      expect(said).toEqual([`${transport} -> ${transport} (resume)`])
      expect(c.recovered).toBe(true)
      expect(connects).toBe(1)
    }, 45_000)
  },
)
