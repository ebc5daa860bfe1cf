// A client whose session ended (its server restarted) starts a new one, and the new session's
// first GET goes out before the client has set its books to the new session: it must not carry
// the old session's count of packets received. The server takes that count for an ACK of what
// the new session sent before the GET (a welcome in `connection`) and forgets it; should that
// GET's answer be lost, nothing sends those packets again, and the client, missing them, resumes
// into the same hole for good (a gap at every resume).
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

/**
 * A fetch that loses the answer to the first GET of the client's second session from the line
 * that holds `mark` on: the client gets the lines before it (an SSE stream's prelude, which
 * opens the stream), then the connection drops on the way back.
 */
function losingFirstGetOfSecondSession(mark: string): { fetch: typeof fetch; lost(): boolean } {
  let firstSid: string | undefined
  let lost = false
  let cut = false
  const lossy: typeof fetch = async (input, init) => {
    const sid = new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid')
    const res = await fetch(input, init)
    if ((init?.method ?? 'GET') !== 'GET' || !sid || !res.body) return res
    firstSid ??= sid
    if (sid === firstSid || lost) return res
    lost = true
    const body = cutAt(res.body, mark, () => {
      cut = true
    })
    return new Response(body, { status: res.status, headers: res.headers })
  }
  return { fetch: lossy, lost: () => cut }
}

/** `body` up to the line that holds `mark`, then broken off (`broke` hears of it). */
function cutAt(
  body: ReadableStream<Uint8Array>,
  mark: string,
  broke: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()
  let text = ''
  let cut = false
  const broken = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    await reader.cancel()
    broke()
    controller.error(new TypeError('terminated: the answer was lost on its way'))
  }
  return new ReadableStream({
    async pull(controller) {
      // Broken off only at the next read: an error drops what is queued but not read yet.
      if (cut) return broken(controller)
      // Whole lines only, and at least one a pull (a pull that gives nothing is not called again).
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return controller.close()
        text += decoder.decode(value, { stream: true })
        const at = text.indexOf(mark)
        cut = at !== -1
        const end = text.lastIndexOf('\n', cut ? at : text.length) + 1
        if (end > 0) {
          controller.enqueue(encoder.encode(text.slice(0, end)))
          text = text.slice(end)
          return
        }
        if (cut) return broken(controller)
      }
    },
    cancel: (reason) => reader.cancel(reason),
  })
}

describe.each(['polling', 'sse'] as const)('a new session after the last one ended, over %s', (transport) => {
  it('gets what its server sent before the first GET even when that answer is lost, then goes on', async () => {
    const setup = (app: Parameters<typeof parleyOf>[0]) =>
      parleyOf(app).on('connection', (socket) => {
        for (let i = 1; i <= 3; i++) socket.emit('welcome', i)
        socket.on('more', (n: number, reply?: (value: number) => void) => {
          for (let i = 1; i <= n; i++) socket.emit('filler', i)
          reply?.(n)
        })
        socket.on('last', (reply: (value: number) => void) => {
          socket.emit('news', 'last')
          reply(1)
        })
      })
    const first = await startServer(setup)
    const lossy = losingFirstGetOfSecondSession('"welcome",[3]')
    const c = client(first.url, { transports: [transport], fetch: lossy.fetch })
    const welcomes: number[] = []
    c.on('welcome', (n: number) => welcomes.push(n))
    const news: string[] = []
    c.on('news', (text: string) => news.push(text))
    // The first session's count runs well past what the next one sends at its start.
    expect(
      await (
        c.timeout(3000) as unknown as { emitWithAck(event: string, n: number): Promise<number> }
      ).emitWithAck('more', 40),
    ).toBe(40)
    await until(() => welcomes.length === 3, 3000, 'the first session')

    // A restart on the same port: the session is gone (told so or not), the client starts anew.
    await first.close()
    await startServer(setup, {}, first.port)
    await until(() => welcomes.length === 6, 5000, `the second session's welcomes (${welcomes})`)
    expect(welcomes).toEqual([1, 2, 3, 1, 2, 3])
    expect(lossy.lost()).toBe(true)
    // The session goes on: what its server sends next arrives.
    await (c.timeout(3000) as unknown as { emitWithAck(event: string): Promise<number> }).emitWithAck('last')
    await until(() => news.length === 1, 3000, 'the second session goes on')
  })
})
