/**
 * docs/protocol.md, "A session, start to end", run on the wire as the page shows it: a
 * WebSocket that says HELLO, asks, is answered and acknowledged, then breaks without a close;
 * a resume over SSE that gets what was emitted meanwhile; the client's CLOSE. Every packet the
 * server sends is compared with the page's text, the session's ids put in.
 */
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { read } from '../../../test/docs/markdown.js'
import { closeApp, until, within } from './helpers.js'

let app: FastifyInstance | undefined
afterEach(async () => {
  await closeApp(app)
  app = undefined
})

/** The `text` blocks of the page's section "A session, start to end", in order. */
function transcripts(): string[] {
  const doc = read('docs/protocol.md')
  const section = doc.slice(doc.indexOf('## A session, start to end'))
  return [...section.matchAll(/```text\n([\s\S]*?)```/g)].map(([, block = '']) => block)
}

/** The packet after `<` (server to client) or `>` on each line of a block, by direction. */
function packets(block: string, direction: '<' | '>'): string[] {
  return block
    .split('\n')
    .filter((line) => line.startsWith(direction))
    .map((line) => /(\[.*\])\s*$/.exec(line)?.[1])
    .filter((packet): packet is string => packet !== undefined)
}

describe('docs/protocol.md: a session, start to end', () => {
  it('goes on the wire as the page shows it', async () => {
    const [overWebSocket = '', resumeOverSse = '', closing = ''] = transcripts()
    // The page's ids, replaced by this session's own.
    const pageSid = 'V1StGXR8_Z5jdHi6B-myT'
    const pageId = 'Uakgb_J5m9g-0JDMbcJqL'

    const server = Fastify()
    await server.register(parley)
    const ended: string[] = []
    server.parley.on('connection', (socket) => {
      socket.on('chat', (_msg: unknown, ack: (reply: { ok: boolean }) => void) => ack({ ok: true }))
      socket.on('disconnect', (reason) => ended.push(reason))
    })
    app = server
    await server.listen({ port: 0, host: '127.0.0.1' })
    const address = server.server.address()
    if (!address || typeof address === 'string') throw new Error('no port')
    const base = `127.0.0.1:${address.port}/parley`

    // > GET /parley/ws?v=1   Sec-WebSocket-Protocol: parley.v1
    const ws = new WebSocket(`ws://${base}/ws?v=1`, 'parley.v1')
    const got: string[] = []
    ws.on('message', (data) => got.push(String(data)))
    await within(new Promise((resolve) => ws.once('open', resolve)), 3000, 'the upgrade')
    expect(ws.protocol).toBe('parley.v1')
    const [hello = '', event = '', ack = ''] = packets(overWebSocket, '>')
    const [open = '', reply = '', serverAck = ''] = packets(overWebSocket, '<')
    ws.send(hello)
    await until(() => got.length === 1, 3000, 'OPEN')
    const sid = (JSON.parse(got[0] ?? '') as [number, { sid: string; id: string }])[1].sid
    const id = (JSON.parse(got[0] ?? '') as [number, { sid: string; id: string }])[1].id
    const ours = (text: string) => text.replaceAll(pageSid, sid).replaceAll(pageId, id)
    expect(got[0]).toBe(ours(open))
    ws.send(event)
    // The reply, then the server's ACK of the event (within 200 ms of it).
    await until(() => got.length === 3, 3000, 'the reply and the ACK')
    expect(got.slice(1)).toEqual([reply, serverAck])
    ws.send(ack)

    // The WebSocket breaks (no close frame): the session lives on, and keeps what it emits.
    const socket = [...server.parley.sockets.values()][0]
    ws.terminate()
    await until(() => socket?.transport === null, 3000, 'the session to lose its WebSocket')
    socket?.emit('news', { text: 'missed while away' })

    const [resume = '', pong = ''] = packets(resumeOverSse, '>')
    const [reopen = '', news = ''] = packets(resumeOverSse, '<')
    const post = (query: string, body: string) =>
      fetch(`http://${base}/sse?v=1${query}`, { method: 'POST', body: ours(body) })
    const opened = await post('', resume)
    expect(opened.status).toBe(200)
    expect((await opened.text()).trim()).toBe(ours(reopen))
    const stream = await fetch(`http://${base}/sse?v=1&sid=${sid}`)
    expect([stream.status, stream.headers.get('content-type')?.split(';')[0]]).toEqual([
      200,
      'text/event-stream',
    ])
    const reader = stream.body?.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!text.includes(`data: ${news}`)) {
      const chunk = await within(reader?.read() ?? Promise.reject(new Error('no body')), 3000, 'the news')
      if (chunk.done) break
      text += chunk.value
    }
    expect(text.startsWith(':')).toBe(true) // the prelude, a comment line
    expect(text).toContain(`data: ${news}\n`)
    expect((await post(`&sid=${sid}`, pong)).status).toBe(204)

    // The application disconnects: the CLOSE ends the session, and the server ends the stream.
    const [close = ''] = packets(closing, '>')
    expect((await post(`&sid=${sid}`, close)).status).toBe(204)
    const streamEnd = async () => {
      for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read())
        text += chunk.value
    }
    await within(streamEnd(), 3000, 'the end of the event stream')
    expect(ended).toEqual(['client disconnect'])
  })
})
