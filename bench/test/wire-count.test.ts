// The wire counter poll-count.ts reads: it counts requests, packets and bytes as they cross the
// port, and changes nothing the server's own handler reads, a body it takes later included.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { exchange, type Origin } from '../src/thin-http.ts'
import { countWire } from '../src/wire-count.ts'

let server: http.Server | undefined
let origin: Origin | undefined
afterEach(async () => {
  origin?.agent.destroy()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
  origin = undefined
})

describe('countWire', () => {
  it('counts GETs, POSTs and the packets of their bodies, and leaves the bodies to the server', async () => {
    const bodies: string[] = []
    server = http.createServer((req, res) => {
      // Read a turn later, as a server whose hooks run first does.
      setImmediate(() => {
        const chunks: Buffer[] = []
        req.on('data', (chunk: Buffer) => chunks.push(chunk))
        req.once('end', () => {
          if (req.method === 'POST') {
            bodies.push(Buffer.concat(chunks).toString('utf8'))
            res.writeHead(204).end()
          } else res.end('[5,1,"echo",[1],0]\n[4,2]')
        })
      })
    })
    const wire = countWire(server)
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/poll?v=1&sid=s`
    origin = { agent: new http.Agent({ keepAlive: true }), localAddress: undefined }
    await exchange(origin, 'GET', url)
    wire.reset()
    await exchange(origin, 'POST', url, '[5,1,"echo",[1],0]\n[5,2,"echo",[2],0]\n[4,1]')
    await exchange(origin, 'GET', `${url}&ack=2`)
    const counts = wire.read()
    expect(bodies).toEqual(['[5,1,"echo",[1],0]\n[5,2,"echo",[2],0]\n[4,1]'])
    expect(counts).toMatchObject({
      gets: 1,
      posts: 1,
      getsWithAck: 1,
      getsWithAckAbove0: 1,
      emptyAnswers: 0,
      statuses: { '200': 1, '204': 1 },
      postSizes: { '3': 1 },
      answerSizes: { '2': 1 },
      upPackets: { '5': 2, '4': 1 },
      downPackets: { '5': 1, '4': 1 },
      // The connection opened before the reset counts only what it moved since.
      connections: 0,
    })
    expect(counts.bytesRead).toBeGreaterThan(counts.upBodyBytes)
    expect(counts.bytesWritten).toBeGreaterThan(counts.downBodyBytes)
  })
})
