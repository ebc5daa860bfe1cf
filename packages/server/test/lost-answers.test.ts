// Over SSE and long-polling, packets can go to a GET the client no longer reads: one it gave up
// on (aborted when its transport failed), delayed in a proxy or a forwarding node, that reaches
// the server after the client resumed. A GET's `ack`, written after reading every answer (the
// stream before it), tells the server what never arrived (docs/protocol.md, Delivery): these
// tests speak the wire directly, so that they can lose answers on purpose.
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'

const opened = closedAfterEach()

type Emitter = { emit(event: string, ...args: unknown[]): boolean }

/** A server, and a session opened on it by hand over `kind` (no GET yet). */
async function session(kind: 'poll' | 'sse' = 'poll') {
  const sockets: Emitter[] = []
  const reasons: string[] = []
  opened.started = await startServer({ pingInterval: 30_000, pingTimeout: 30_000 }, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('disconnect', (reason) => reasons.push(reason))
    })
  })
  const base = opened.started.base
  const hello = await fetch(`${base}/${kind}?v=1`, { method: 'POST', body: '[8,{}]' })
  const sid = (JSON.parse(await hello.text()) as [number, { sid: string }])[1].sid
  await until(() => sockets.length === 1)
  const url = `${base}/${kind}?v=1&sid=${sid}`
  return {
    socket: sockets[0]!,
    reasons,
    /** One GET (`ack` as given, none when undefined): the numbered events' [seq, first arg]. */
    async poll(ack?: number): Promise<[number, unknown][]> {
      // Bounded: a GET that finds nothing to answer is held for the heartbeat (30 s here).
      const res = await fetch(ack === undefined ? url : `${url}&ack=${ack}`, {
        signal: AbortSignal.timeout(3000),
      })
      const body = await res.text()
      return body
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as unknown[])
        .filter((packet) => packet[0] === PacketType.EVENT)
        .map((packet) => [packet[1] as number, (packet[3] as unknown[])[0]])
    },
    /** Opens an event stream (`ack` as given); its events' [seq, first arg] gather as they come. */
    async stream(ack?: number) {
      const abort = new AbortController()
      const res = await fetch(ack === undefined ? url : `${url}&ack=${ack}`, { signal: abort.signal })
      const events: [number, unknown][] = []
      let ended = false
      void (async () => {
        const decoder = new TextDecoder()
        let text = ''
        try {
          for await (const chunk of res.body!) {
            text += decoder.decode(chunk as Uint8Array, { stream: true })
            const blocks = text.split('\n\n')
            text = blocks.pop()!
            for (const block of blocks) {
              const data = block.split('\n').find((line) => line.startsWith('data: '))
              if (data === undefined) continue
              const packet = JSON.parse(data.slice(6)) as unknown[]
              if (packet[0] === PacketType.EVENT)
                events.push([packet[1] as number, (packet[3] as unknown[])[0]])
            }
          }
        } catch {
          // Aborted by the test.
        }
        ended = true
      })()
      return { events, ended: () => ended, drop: () => abort.abort() }
    },
    /** POSTs packet lines. */
    async post(...lines: string[]): Promise<number> {
      return (await fetch(url, { method: 'POST', body: lines.join('\n') })).status
    },
  }
}

describe('a polling answer the client never read', () => {
  it('goes again to the next GET whose ack is lower than what it carried', async () => {
    const { socket, poll, reasons } = await session()
    for (let n = 1; n <= 3; n++) socket.emit('news', n)
    // This answer is lost: the GET that took it was one the client had given up on.
    expect(await poll(0)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    expect(await poll(0)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    // Read this time: the next GET acknowledges all three, and waits for something new.
    const waiting = poll(3)
    socket.emit('news', 4)
    expect(await waiting).toEqual([[4, 4]])
    expect(reasons).toEqual([])
  })

  it('goes before what was waiting for the next GET, in order', async () => {
    const { socket, poll } = await session()
    socket.emit('news', 1)
    socket.emit('news', 2)
    expect(await poll(0)).toEqual([
      [1, 1],
      [2, 2],
    ])
    socket.emit('news', 3)
    expect(await poll(0)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    expect(await poll(1)).toEqual([
      [2, 2],
      [3, 3],
    ])
  })

  it('leaves out what the client acknowledged meanwhile in a POST', async () => {
    const { socket, poll, post } = await session()
    for (let n = 1; n <= 3; n++) socket.emit('news', n)
    expect((await poll(0)).length).toBe(3)
    // The client's ACK for two of them came by POST; the GET's ack is older than that.
    expect(await post('[4,2]')).toBe(204)
    expect(await poll(0)).toEqual([[3, 3]])
  })

  it('is not sent again to a client that acknowledges by POST only (its GETs carry no ack)', async () => {
    const { socket, poll, post } = await session()
    socket.emit('news', 1)
    socket.emit('news', 2)
    expect(await poll()).toEqual([
      [1, 1],
      [2, 2],
    ])
    // Its next GET comes before its POSTed ACK: that is no sign of a lost answer.
    const waiting = poll()
    expect(await post('[4,2]')).toBe(204)
    socket.emit('news', 3)
    expect(await waiting).toEqual([[3, 3]])
  })
})

describe('events written to an SSE stream the client never read', () => {
  it('are written again to the stream of a later GET whose ack is lower', async () => {
    const { socket, stream, reasons } = await session('sse')
    // The first stream: a GET the client had given up on, which took the stream first.
    const stale = await stream(0)
    for (let n = 1; n <= 3; n++) socket.emit('news', n)
    await until(() => stale.events.length === 3)
    const own = await stream(0)
    await until(() => stale.ended(), 3000, 'the older stream ended')
    await until(() => own.events.length === 3, 3000, 'the events again')
    socket.emit('news', 4)
    await until(() => own.events.length === 4)
    expect(own.events).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ])
    expect(reasons).toEqual([])
    own.drop()
  })

  it('go before what waited for a stream, and not when the ack covers them', async () => {
    const { socket, stream } = await session('sse')
    const first = await stream(0)
    socket.emit('news', 1)
    socket.emit('news', 2)
    await until(() => first.events.length === 2)
    first.drop()
    // Nobody reads: what comes now waits for the next stream.
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.emit('news', 3)
    const second = await stream(1)
    await until(() => second.events.length === 2)
    expect(second.events).toEqual([
      [2, 2],
      [3, 3],
    ])
    // This one read everything: a stream after it gets nothing again.
    const third = await stream(3)
    socket.emit('news', 4)
    await until(() => third.events.length === 1)
    expect(third.events).toEqual([[4, 4]])
    third.drop()
  })
})
