// A resume after a handoff whose `ack` is past what the snapshot holds: the old node sent more
// after its snapshot (a move it gave up on, taken back too late), or the client lies. The node
// taking the session over cannot tell which, and any client can send such an ack: it logs the
// takeover at debug, one line each, never a warning. Real servers joined by the in-process test
// adapter (its store stands in for Redis), and a raw client that resumes with the ack it likes.
import { PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

interface Line {
  level: number
  msg: string
  socket?: string
  unrecorded?: number
}

let nodes: Started[] = []
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/** pino's level of a debug line, and of a warning. */
const DEBUG = 20
const WARN = 40

describe('a resume ack past the snapshot', () => {
  it('is logged at debug, once per takeover, never as a warning: a client can send it', async () => {
    const cluster = new Cluster({ handoff: true })
    const lines: Line[] = []
    const node = (name: string, level: string) =>
      startServer({ adapter: cluster.adapter(name), handoff: { timeout: 3000, retrySpread: 0 } }, undefined, {
        return503OnClosing: false,
        logger: { level, stream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
      })
    const a = await node('a', 'warn')
    const b = await node('b', 'debug')
    nodes.push(a, b)
    const liars = [await rawConnect('websocket', a.base), await rawConnect('websocket', a.base)]
    clients.push(...liars)
    const drained = a.app.close()
    for (const liar of liars) await liar.next((p) => p.type === PacketType.CLOSE)
    // Both resume on b, claiming packets 1000 and 2000 that no node sent.
    for (const [k, liar] of liars.entries()) {
      const again = await rawConnect('websocket', b.base, { sid: liar.sid, ack: 1000 * (k + 1) })
      clients.push(again)
      expect(again.open).toMatchObject({ sid: liar.sid, recovered: true })
    }
    await drained
    const said = () => lines.filter(({ msg }) => msg.includes('older than what its client had'))
    await until(() => said().length === 2, 3000, 'a line for each takeover')
    expect(said().map(({ level, socket, unrecorded }) => [level, socket, unrecorded])).toEqual([
      [DEBUG, liars[0]!.id, 1000],
      [DEBUG, liars[1]!.id, 2000],
    ])
    expect(lines.filter(({ level }) => level >= WARN)).toEqual([])
  })
})
