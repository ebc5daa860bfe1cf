// Two restarts in a row at one path while the first instance still closes: the second closes in
// its turn, and no instance is open at the path. The newest closing one takes the path's new
// upgrades (the oldest may be past its own Parley's close), and each closing one answers its own
// sessions' requests, whichever instance the server's handler gives the path to.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it, onTestFinished } from 'vitest'
import { gate } from './gate.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'
import { upgradeStatus } from './upgrade-status.js'

/**
 * The first instance closing, its close held (by an event in its middleware, then by `setup`'s
 * hooks), and the second made, served, and closing in its turn, held by its own client's event.
 */
async function twoClosing(
  return503OnClosing: boolean,
  setup?: Parameters<Awaited<ReturnType<typeof restartableServer>>['make']>[2],
) {
  const shared = await restartableServer(return503OnClosing)
  const firsts = holding()
  const first = await shared.make('first', firsts.onConnection, setup)
  shared.serve(first)
  const { client: firstClient } = await shared.connect('polling')
  const { closing: firstClosing } = await beginHeldClose(first, firsts, firstClient, 'the first instance')
  const seconds = holding()
  const second = await shared.make('second', seconds.onConnection)
  shared.serve(second)
  const { client: secondClient } = await shared.connect('polling')
  const { closing: secondClosing } = await beginHeldClose(
    second,
    seconds,
    secondClient,
    'the second instance',
  )
  return { shared, first, second, firstClient, secondClient, firsts, seconds, firstClosing, secondClosing }
}

describe('two instances closing at one path, none open there', () => {
  it.each([true, false])(
    "give a new WebSocket to the newer one's route, not to the older one past its close (return503OnClosing: %s)",
    async (return503OnClosing) => {
      // The first one's close goes past Parley's own (its sessions ended, its routes closed) and
      // waits in a hook of the application's, its upgrades still claimed.
      const late = gate()
      onTestFinished(() => late.open())
      const scene = await twoClosing(return503OnClosing, (app) => app.addHook('onClose', late.pass))
      scene.firsts.release()
      await until(() => late.reached(), 5000, "the first instance's close to reach the application's hook")
      expect(scene.first.parley.closed).toBe(true)
      // The second one still drains: its route takes a well-formed upgrade (its HELLO decides,
      // refused or relayed as during any drain), where the first one's would be refused 503.
      const status = await upgradeStatus(`ws://127.0.0.1:${scene.shared.port}/a/ws?v=1`).finally(() => {
        late.open()
        scene.seconds.release()
      })
      expect(status).toBe(101)
      await within(scene.secondClosing, 5000, 'the second instance to close')
    },
  )

  it.each([true, false])(
    "have each one's polling client hear its own POST and CLOSE (return503OnClosing: %s)",
    async (return503OnClosing) => {
      const scene = await twoClosing(return503OnClosing)
      const sids = new Map([
        [[...scene.first.parley.sockets.values()][0]!.session.sid, 'first'],
        [[...scene.second.parley.sockets.values()][0]!.session.sid, 'second'],
      ])
      const answered = new Map<string, number>()
      scene.shared.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const sid = new URL(req.url ?? '/', 'http://x').searchParams.get('sid')
        const whose = sid === null ? undefined : sids.get(sid)
        if (req.method === 'POST' && whose) res.once('close', () => answered.set(whose, res.statusCode))
      })
      const reasons = new Map<string, string>()
      scene.firstClient.on('disconnect', (reason: string) => reasons.set('first', reason))
      scene.secondClient.on('disconnect', (reason: string) => reasons.set('second', reason))
      scene.firstClient.emit('late' as never)
      scene.secondClient.emit('late' as never)
      await until(() => answered.size === 2, 5000, "each client's POST to be answered")
      expect(Object.fromEntries(answered)).toEqual({ first: 204, second: 204 })
      scene.firsts.release()
      scene.seconds.release()
      await within(Promise.all([scene.firstClosing, scene.secondClosing]), 5000, 'both instances to close')
      await until(() => reasons.size === 2, 5000, 'both clients to end')
      expect(Object.fromEntries(reasons)).toEqual({ first: 'server shutdown', second: 'server shutdown' })
    },
  )
})
