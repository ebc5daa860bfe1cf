// A node that answers over Redis from a thread of its own, for the tests of a stalled node
// thread: it reads the request channel and, when the request of kind `kind` comes, once the gate
// of stall-gate.ts says the node's thread has stalled, PUBLISHes `answer` (given that request's
// sender and id; a list: each in turn, a count and then a reply) on the sender's response channel,
// which reaches the sender's subscriber during the stall, on its connection opened long before.
import { parentPort, workerData } from 'node:worker_threads'
import { createClient } from 'redis'
import { awaitStall } from '../../server/test/stall.js'
import { HOLD_BOUND_MS, SENT } from '../../server/test/stall-gate.js'

const { url, prefix, node, kind, answer, gate } = workerData as {
  url: string
  prefix: string
  node: string
  kind: string
  answer: Record<string, unknown> | Record<string, unknown>[]
  gate: Int32Array
}

const publisher = createClient({ url })
const subscriber = createClient({ url })
publisher.on('error', () => {})
subscriber.on('error', () => {})
await publisher.connect()
await subscriber.connect()
await subscriber.subscribe(`${prefix}:request`, (message) => {
  const request = JSON.parse(message) as { n: string; id: string; k: string }
  if (request.k !== kind) return
  awaitStall(gate, HOLD_BOUND_MS)
  Atomics.add(gate, SENT, 1)
  const channel = `${prefix}:response:${request.n}`
  const answers = Array.isArray(answer) ? answer : [answer]
  void Promise.all(
    answers.map((one) => publisher.publish(channel, JSON.stringify({ n: node, id: request.id, ...one }))),
  ).then(() => parentPort?.postMessage({ answered: true }))
})
parentPort?.postMessage({ subscribed: true })
parentPort?.once('message', () => {
  publisher.destroy()
  subscriber.destroy()
  parentPort?.close()
})
