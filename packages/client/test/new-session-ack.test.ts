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
 * A fetch that loses the answer to the first GET of the client's second session, once the
 * server has written `mark` into it (the connection dropped on the way back).
 */
function losingFirstGetOfSecondSession(mark: string): typeof fetch {
  let firstSid: string | undefined
  let lost = false
  return async (input, init) => {
    const sid = new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid')
    const res = await fetch(input, init)
    if ((init?.method ?? 'GET') !== 'GET' || !sid || !res.body) return res
    firstSid ??= sid
    if (sid === firstSid || lost) return res
    lost = true
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let text = ''
    while (!text.includes(mark)) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    await reader.cancel()
    throw new TypeError('fetch failed: the answer was lost on its way')
  }
}

describe('a new session after the last one ended, over polling', () => {
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
    const c = client(first.url, {
      transports: ['polling'],
      fetch: losingFirstGetOfSecondSession('"welcome",[3]'),
    })
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
    // The session goes on: what its server sends next arrives.
    await (c.timeout(3000) as unknown as { emitWithAck(event: string): Promise<number> }).emitWithAck('last')
    await until(() => news.length === 1, 3000, 'the second session goes on')
  })
})
