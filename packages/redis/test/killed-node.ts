// A node killed without a drain, as Redis still tells it for three heartbeats after the kill.
import { createHash } from 'node:crypto'
import { holdPort } from '../../../test/support/ports.js'
import { until } from '../../server/test/helpers.js'
import type { TestNode } from './nodes.js'

/** The Redis key of session `sid`'s owner record (the adapter's default prefix; see sessions.ts). */
export const ownerKey = (sid: string) =>
  `parley:session:${createHash('sha256').update(sid).digest('base64url')}`

export interface KilledNode {
  /** Its node id, as the owner record names it. */
  readonly id: string
  /** Takes its records out of Redis and frees its address. */
  remove(): Promise<void>
}

/** What `killedNode` writes through, and reads back from: a node's Redis client and adapter. */
export type Witness = Pick<TestNode, 'redis'> & { adapter: Pick<TestNode['adapter'], 'liveNodes'> }

/**
 * Writes, through `node`'s Redis client, a killed node holding session `sid`: its record, note
 * (of version `version`: 1, a node that says it got a handoff request, and no more) and index
 * entry (live for as long as a test runs), the owner record of its session, and nothing at its
 * address (a port held here, so that no other test file's server answers there meanwhile);
 * resolves once `node` reads it as live.
 */
export async function killedNode(node: Witness, sid: string, version = 1): Promise<KilledNode> {
  const id = 'killed-node'
  const record = `parley:node:${id}`
  const address = await holdPort()
  const remove = async () => {
    await node.redis.sendCommand(['DEL', record, `${record}:note`, ownerKey(sid)])
    await node.redis.sendCommand(['ZREM', 'parley:nodes', id])
    address.release()
  }
  try {
    await node.redis.sendCommand(['SET', record, `http://127.0.0.1:${address.port}`, 'PX', '60000'])
    const note = JSON.stringify({ v: version, p: '/parley' })
    await node.redis.sendCommand(['SET', `${record}:note`, note, 'PX', '60000'])
    await node.redis.sendCommand(['ZADD', 'parley:nodes', String(Date.now()), id])
    await node.redis.sendCommand(['SET', ownerKey(sid), id, 'EX', '60'])
    await until(() => node.adapter.liveNodes.includes(id), 3000, 'the killed node read as live')
  } catch (err) {
    await remove()
    throw err
  }
  return { id, remove }
}
