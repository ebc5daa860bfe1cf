import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { RelayedStream } from './relayed-stream.js'

/** An owner's stream and a client's response, as plain streams; what reached the client, as text. */
function relayed() {
  const owner = new PassThrough()
  const client = new PassThrough()
  let text = ''
  client.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  let cuts = 0
  const stream = new RelayedStream(
    owner as unknown as IncomingMessage,
    client as unknown as ServerResponse,
    () => {
      cuts++
    },
  )
  const flushed = () => new Promise((resolve) => setImmediate(resolve))
  return { owner, client, stream, flushed, text: () => text, cuts: () => cuts }
}

describe('a relayed event stream', () => {
  it('passes the owner’s bytes on as they come, and ends with the last event after a whole one', async () => {
    const r = relayed()
    r.owner.write('data: [5,1]\n\n')
    r.owner.write('data: [5,2]\n\n')
    await r.flushed()
    r.stream.end('[1,"server handoff","m",0]')
    await r.flushed()
    expect(r.text()).toBe('data: [5,1]\n\ndata: [5,2]\n\ndata: [1,"server handoff","m",0]\n\n')
    expect(r.client.writableEnded).toBe(true)
    expect(r.owner.destroyed).toBe(true)
    expect(r.cuts()).toBe(0)
  })

  it('lets the event under way end first, and nothing after it', async () => {
    const r = relayed()
    r.owner.write('data: [5,1]\n\ndata: [5,')
    await r.flushed()
    r.stream.end('CLOSE')
    await r.flushed()
    expect(r.client.writableEnded).toBe(false)
    r.owner.write('2]\n\ndata: [5,3]\n\n')
    await r.flushed()
    expect(r.text()).toBe('data: [5,1]\n\ndata: [5,2]\n\ndata: CLOSE\n\n')
    expect(r.client.writableEnded).toBe(true)
  })

  it('finds an event’s end split between two chunks', async () => {
    const r = relayed()
    r.owner.write('data: [5,1]\n')
    await r.flushed()
    r.stream.end('CLOSE')
    r.owner.write('\ndata: [5,2]\n\n')
    await r.flushed()
    expect(r.text()).toBe('data: [5,1]\n\ndata: CLOSE\n\n')
  })

  it('is cut when the owner breaks off', async () => {
    const r = relayed()
    r.owner.write('data: [5,1]\n\ndata: [5,')
    r.owner.destroy()
    await r.flushed()
    expect(r.cuts()).toBe(1)
    expect(r.text()).toBe('data: [5,1]\n\ndata: [5,')
  })
})
