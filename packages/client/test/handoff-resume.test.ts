// The resume after CLOSE 'server handoff' on a WebSocket: the nodes are busy taking sessions over,
// so an upgrade may be slow to be answered. The client waits the whole connectTimeout for it (at
// most 10 s) rather than a third of it, and resumes on WebSocket instead of stepping down to SSE
// and climbing back later. Two real servers joined by the server tests' in-process adapter (its
// store stands in for Redis) behind a round-robin proxy; the second answers upgrades late.
import { connect, type Socket } from '@parley/client'
import type { ParleyServerOptions } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, sleep, startServer, until } from '../../server/test/helpers.js'

let nodes: Started[] = []
let proxy: RoundRobinProxy | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await sleep(50)
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/** Longer than a third of CONNECT_TIMEOUT (what a first connect waits for an upgrade). */
const UPGRADE_DELAY_MS = 2500
const CONNECT_TIMEOUT = 6000

describe('a WebSocket resume after a handoff', () => {
  it('waits the whole connectTimeout for a slow upgrade, and stays on WebSocket', async () => {
    const cluster = new Cluster({ handoff: true })
    const options: ParleyServerOptions = { handoff: { timeout: 7000, retrySpread: 0 } }
    const a = await startServer({ adapter: cluster.adapter('a'), ...options }, undefined, {
      return503OnClosing: false,
    })
    nodes.push(a)
    let slow = false
    const b = await startServer(
      { adapter: cluster.adapter('b'), ...options },
      (app) => {
        // A node under load: its upgrades are answered late.
        app.addHook('onRequest', async (request) => {
          if (slow && request.url.startsWith('/parley/ws')) await sleep(UPGRADE_DELAY_MS)
        })
      },
      { return503OnClosing: false },
    )
    nodes.push(b)
    proxy = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
    const c = connect(`${proxy.url}/parley`, {
      transports: ['websocket', 'sse'],
      connectTimeout: CONNECT_TIMEOUT,
      upgradeDelay: 60_000,
      autoConnect: false,
    })
    clients.push(c)
    const said: string[] = []
    c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
    c.on('transport_error', (name, error) => said.push(`${name} ${error.code}`))
    c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    const id = c.id
    slow = true
    proxy.avoid.clear()
    proxy.avoid.add(0)
    const drained = a.app.close()
    await until(() => said.some((line) => line.includes('->')), CONNECT_TIMEOUT + 5000, 'the resume')
    expect(said).toEqual(['websocket -> websocket (resume)'])
    expect(c.transport).toBe('websocket')
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    await drained
  })
})
