// A CLOSE that answers a HELLO may come after an ACK (HELLO `closeAck`), never after a numbered
// packet. The real server sends none there, so a stand-in server answers the HELLO so.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeClients, until } from './helpers.js'

afterEach(closeClients)

it('a numbered packet before the CLOSE that answers a HELLO is ignored: no crash, no listener, the client stops', async () => {
  const answer = [
    encodeText({ type: PacketType.EVENT, seq: 1, name: 'news', args: [], ackId: 0 }),
    encodeText({ type: PacketType.CLOSE, reason: 'server disconnect', message: 'gone' }),
  ].join('\n')
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain' }).end(answer)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  try {
    const heard: unknown[] = []
    const left = await unheard(async () => {
      const c = client(`http://127.0.0.1:${port}/parley`, { transports: ['polling'] })
      c.on('news', () => heard.push('news'))
      c.on('connect_error', (error, willRetry) => heard.push([error.code, willRetry]))
      await until(() => !c.active, 3000, 'the client to stop')
    })
    expect(left).toEqual([])
    // The CLOSE alone counts: 'server disconnect' ends the attempt for good.
    expect(heard).toEqual([['PARLEY_DISCONNECTED', false]])
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
})
