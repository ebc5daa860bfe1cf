// A cluster query stops waiting for a node that drops out of the live set while it waits. A node
// that said goodbye closed, and its sockets with it: the list is whole without it. A node whose
// heartbeat record lapsed (its Redis connection back later than one record lifetime after an empty
// Redis restart, a stalled process) may still hold sockets: the short list is counted in
// `stats.incompleteRequests` and logged with the node and the query's kind, as a timeout is.
import { describe, expect } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { GHOST, published } from './ghost-node.js'
import { to } from './handoff-support.js'
import { droppedOutCases } from './lapse-scene.js'

describe.skipIf(skipRedisSuites())('a cluster query whose node drops out of the live set', () => {
  droppedOutCases({
    ask: async (a, prefix) => {
      const fetched = a.adapter.fetchSockets(to(['room']))
      await until(() => published(a, `${prefix}:request`).length === 1, 5000, "a's query sent")
      return { fetched }
    },
    ended: async ({ fetched }) => {
      const sockets = await within(fetched, 5000, "a's fetchSockets")
      expect(sockets.map((socket) => socket.id)).toEqual(['b0'])
    },
    lines: (node) => node.warned.filter(({ message }) => message.includes('cluster query')),
    lapse: {
      name: 'counts and logs a node whose record lapsed, by its id and the kind of the query',
      line: {
        message: `@parley/redis: a cluster query went unanswered by some nodes: 1 dropped out of the live set before answering, their heartbeat record lapsed without a goodbye: ${GHOST}`,
        details: { query: 'fetch', lapsed: [GHOST], incompleteRequests: 1, times: 1 },
      },
    },
  })
})
