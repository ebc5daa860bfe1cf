// The warnings of a node's heartbeat, each made to happen for a real reason: a Redis that stops
// answering (its heartbeat goes unanswered), and a node that Redis will not let say that it
// joined (an ACL without PUBLISH). Each names what failed, where, and what to do.
import { createClient } from 'redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { Nodes, redisSuite } from './nodes.js'

let nodes: Nodes | undefined

describe.skipIf(skipRedisSuites())("a node's heartbeat warnings", () => {
  const suite = redisSuite(() => nodes)

  it('a Redis that stops answering: the heartbeat fails, and the warning names Redis and what to do', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { requestTimeout: 500 })
    const { url } = suite.redis
    suite.redis.freeze()
    try {
      await until(() => a.warnings.some((w) => w.includes('heartbeat failed')), 5000, 'a failed heartbeat')
    } finally {
      suite.redis.thaw()
    }
    const warning = a.warnings.find((w) => w.includes('heartbeat failed'))
    // What failed, where, and what follows.
    expect(warning).toContain(`heartbeat failed at ${url}; the live-node set is kept as it was`)
    expect(warning).toContain('the other nodes take this node for gone')
    // What to do.
    expect(warning).toContain('check that Redis there is up and answers within requestTimeout')
  })

  it('a Redis that stops answering: the skipped heartbeats are said once per outage, with what follows', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { requestTimeout: 500 })
    const skipped = () => a.warnings.filter((w) => w.includes('heartbeats skipped'))
    suite.redis.freeze()
    try {
      await until(() => skipped().length > 0, 5000, 'a skipped heartbeat')
      // Several more intervals skipped (HEARTBEAT is 300 ms): still one line for this outage.
      await sleep(1500)
    } finally {
      suite.redis.thaw()
    }
    // Closed, the adapter says what it held back: a line at every interval would show now.
    await nodes.stop(a)
    expect(skipped()).toHaveLength(1)
    const warning = skipped()[0]
    expect(warning).toContain(`heartbeats skipped at ${suite.redis.url} while Redis is not reachable`)
    expect(warning).toContain(
      'After 3 heartbeat intervals (900 ms) without one, the other nodes take this node for gone',
    )
    expect(warning).toContain('check that Redis there is up and answers within requestTimeout')
  })

  it('a node whose join Redis does not take: the warning names Redis and what to do, and the others find it all the same', async () => {
    nodes = new Nodes()
    const admin = createClient({ url: suite.redis.url })
    await admin.connect()
    // A user that may do everything but PUBLISH: its node's heartbeat goes through, and its
    // word that it joined does not.
    await admin.sendCommand(['ACL', 'SETUSER', 'nopublish', 'on', '>secret', '~*', '&*', '+@all', '-publish'])
    try {
      const b = await nodes.start(suite.redis.url)
      const url = new URL(suite.redis.url)
      const a = await nodes.start(`redis://nopublish:secret@${url.host}`)
      const warning = a.warnings.find((w) => w.includes('joined'))
      // What failed, where, and what follows.
      expect(warning).toContain(
        `could not tell the other nodes that this one joined: Redis at ${suite.redis.url} did not take it`,
      )
      expect(warning).toContain('they find this node at their next heartbeat instead')
      // What to do.
      expect(warning).toContain('check that Redis there answers and lets this client PUBLISH (an ACL)')
      // As it says: b finds a all the same.
      await until(() => b.adapter.liveNodes.includes(a.adapter.node), 5000, 'a seen by b at its heartbeat')
    } finally {
      await admin.sendCommand(['ACL', 'DELUSER', 'nopublish'])
      await admin.quit()
    }
  })
})
