// The hand-off set-up itself: what a test started is let go after it, all of it.
import net from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { HeldInOrder, handoffScenes } from './handoff-support.js'

/** Whether something on 127.0.0.1 still accepts connections at `port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

describe.skipIf(skipRedisSuites())('handoffScenes', () => {
  const scene = handoffScenes()

  it('closes both scenes of a test that started two', async () => {
    const scenes = [await scene(), await scene()]
    const ports = scenes.flatMap(({ redis, proxy }) => [redis.port, Number(new URL(proxy.url).port)])
    expect(await Promise.all(ports.map(answers))).toEqual([true, true, true, true])
    // Runs after the file's afterEach, which closes the scenes.
    onTestFinished(async () => {
      expect(await Promise.all(ports.map(answers))).toEqual([false, false, false, false])
    })
  })

  it('destroys the client of a node whose Redis never answers, and refuses the node', async () => {
    const { cluster } = await scene()
    // A server that takes connections and never answers: node-redis waits on its HELLO for ever.
    const open = new Set<net.Socket>()
    const silent = net.createServer((socket) => {
      open.add(socket)
      socket.on('close', () => open.delete(socket))
      // Read (and drop) what comes: a socket whose data is left unread never hears its end.
      socket.resume()
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => {
      // Failing, the test leaves a connection open: cut here, or close() would wait on it.
      for (const socket of open) socket.destroy()
      return new Promise<void>((resolve) => silent.close(() => resolve()))
    })
    const { port } = silent.address() as net.AddressInfo
    const node = cluster.node(`redis://127.0.0.1:${port}`, { connectWithin: 500 })
    await expect(within(node, 5000, 'the node to be refused')).rejects.toThrow(
      `still waiting after 500 ms for a node's connection to redis://127.0.0.1:${port}`,
    )
    await until(() => open.size === 0, 3000, 'the connection to be closed')
    expect(cluster.nodes).toEqual([])
  })

  it("closes every node of a cluster, and their connections, when a node's adapter fails to close", async () => {
    const { cluster } = await scene()
    const [a, b] = [await cluster.node(), await cluster.node()]
    const failure = new Error('an adapter that fails to close (test)')
    const close = a.adapter.close.bind(a.adapter)
    // A real adapter cannot be made to fail its close: this one does.
    a.adapter.close = () => Promise.reject(failure)
    onTestFinished(() => close())
    await expect(cluster.close()).rejects.toBe(failure)
    expect([a.redis.isOpen, b.redis.isOpen]).toEqual([false, false])
  })
})

describe('HeldInOrder', () => {
  it('answers every command it held, each with its own outcome, one refused among them', async () => {
    // Redis refuses the first command and runs the second.
    const redis = {
      sendCommand: (args: string[]) =>
        args[0] === 'BAD' ? Promise.reject(new Error('ERR refused')) : Promise.resolve(`ran ${args[0]}`),
    }
    const held = new HeldInOrder(
      redis,
      () => true,
      () => true,
    )
    const outcome = (reply: Promise<unknown> | undefined) =>
      reply?.then(
        (value) => value,
        (err: unknown) => (err instanceof Error ? err.message : err),
      )
    const first = outcome(held.hold(['BAD']))
    const second = outcome(held.hold(['GET']))
    await within(held.runAll(), 2000, 'the run of the held commands')
    expect(await within(Promise.all([first, second]), 2000, 'their answers')).toEqual([
      'ERR refused',
      'ran GET',
    ])
  })
})
