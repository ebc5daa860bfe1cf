// A held poll or an event stream is open for as long as its client is idle: whatever the closing
// server keeps for its connection lasts as long (docs/benchmarks.md, the heap per idle client).
// Only a connection with responses queued behind another (pipelining) is counted.
import { createServer, request, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { connect } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { IdleConnections } from './idle-connections.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A server that holds every response until the test ends it, and its IdleConnections. */
async function holdingServer() {
  const server = createServer()
  const idle = new IdleConnections(server)
  const held: ServerResponse[] = []
  const arrived: (() => void)[] = []
  server.on('request', (_req, res) => {
    held.push(res)
    for (const wake of arrived.splice(0)) wake()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const port = (server.address() as AddressInfo).port
  const requests = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (held.length >= count ? resolve() : arrived.push(check))
      check()
    })
  return { idle, held, port, requests }
}

it('counts no connection for a held response alone', async () => {
  const { idle, held, port, requests } = await holdingServer()
  const req = request({ host: '127.0.0.1', port, path: '/held' })
  req.on('error', () => {})
  req.end()
  cleanups.push(() => void req.destroy())
  await requests(1)
  expect(held).toHaveLength(1)
  expect(idle.pipelined).toBe(0)
})

it('counts a connection with a response queued behind the held one, until it is sent', async () => {
  const { idle, held, port, requests } = await holdingServer()
  const socket: Socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  cleanups.push(() => void socket.destroy())
  socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n')
  await requests(2)
  expect(idle.pipelined).toBe(1)
  held[0]!.end('a')
  held[1]!.end('b')
  await new Promise<void>((resolve) => held[1]!.once('close', () => resolve()))
  expect(idle.pipelined).toBe(0)
})
