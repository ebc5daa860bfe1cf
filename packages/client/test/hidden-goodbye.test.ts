// A page that goes away while one of its POSTs is unanswered (a proxy that holds it, a slow
// network): its goodbye must not wait for that answer, which the page will not live to see. In a
// page that stays, it must. The real client and the real server against each other; a fetch that
// holds one POST stands for the network, and a stubbed `document` (and `event`) for the page.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(async () => {
  vi.unstubAllGlobals()
  await closeAll()
})

/** The body of a POST that carries the CLOSE alone. */
const GOODBYE = expect.stringMatching(/^\[1,"client disconnect"/)

/** Each POST's lines, the padding of the emits' long strings shown as "…". */
function starts(posts: readonly { body: string; keepalive: boolean }[]) {
  return posts.map((p) => ({
    lines: p.body.split('\n').map((l) => l.replace(/"(x+|é+)"/, '"…"')),
    keepalive: p.keepalive,
  }))
}

/**
 * A connected client whose fetch, once `hold()` was called, keeps the next POST of the session
 * to itself (the server never sees it) until `release()`; every POST's body, and whether it went
 * with `keepalive`, is noted. The server notes, in order, each `note` it gets and the session's
 * end. `options`: the server's.
 */
async function session(transport: 'sse' | 'polling', options?: Record<string, unknown>) {
  const seen: string[] = []
  const server = await startServer(
    (app) =>
      parleyOf(app).on('connection', (socket) => {
        socket.on('note', (text: string) => seen.push(text))
        socket.on('numbered', (i: number) => seen.push(`#${i}`))
        socket.on('disconnect', (reason: string) => seen.push(`end: ${reason}`))
      }),
    options,
  )
  const posts: { body: string; keepalive: boolean }[] = []
  let holding = false
  let release = () => {}
  const fetchFn: typeof fetch = async (input, init) => {
    if (init?.method === 'POST' && String(input).includes('sid=')) {
      posts.push({ body: String(init.body), keepalive: init.keepalive === true })
      if (holding) {
        holding = false
        await new Promise<void>((resolve) => {
          release = resolve
        })
      }
    }
    return fetch(input, init)
  }
  const socket = client(server.url, { transports: [transport], fetch: fetchFn })
  await next(socket, 'connect')
  return {
    socket,
    seen,
    posts,
    release: () => release(),
    /** Sends a `note` whose POST goes unanswered. */
    async holdNote() {
      holding = true
      socket.emit('note', 'held')
      await until(() => posts.some((p) => p.body.includes('held')), 3000, 'the held POST')
    },
    /** Calls disconnect(); returns the POSTs it sent at once. */
    disconnect() {
      const before = posts.length
      socket.disconnect()
      return posts.slice(before)
    },
  }
}

describe.each(['sse', 'polling'] as const)('%s: the goodbye of disconnect()', (transport) => {
  const hidden = { document: { visibilityState: 'hidden' } }
  // Browsers hide a page that goes only after `pagehide`: its listener sees it visible.
  const inPagehide = { document: { visibilityState: 'visible' }, event: { type: 'pagehide' } }
  it.each([
    ['past an unanswered POST when the page is hidden', hidden, true],
    ['past an unanswered POST from a pagehide listener, before the browser hides the page', inPagehide, true],
    ['when the page is hidden and no POST is in flight', hidden, false],
  ])('goes at once, with keepalive, %s', async (_, page, held) => {
    const s = await session(transport)
    if (held) await s.holdNote()
    for (const [name, value] of Object.entries(page)) vi.stubGlobal(name, value)
    // The CLOSE went out at once, beside the held POST, and may outlive the page.
    expect(s.disconnect()).toEqual([{ body: GOODBYE, keepalive: true }])
    await until(() => s.seen.length > 0, 3000, 'the end of the session')
    // The server ended the session on the client's word, not when the transport went silent.
    expect(s.seen).toEqual(['end: client disconnect'])
    s.release()
  })

  it('goes alone, at once, with keepalive, when the first emit queued with it makes 64 KiB or more', async () => {
    const s = await session(transport)
    await s.holdNote()
    // Queued behind the held POST, with the CLOSE: together past what browsers keep alive.
    s.socket.emit('note', 'x'.repeat(65_536))
    vi.stubGlobal('document', { visibilityState: 'hidden' })
    // The note is dropped: sent without keepalive it would die with the page, or race the CLOSE.
    expect(s.disconnect()).toEqual([{ body: GOODBYE, keepalive: true }])
    await until(() => s.seen.length > 0, 3000, 'the end of the session')
    expect(s.seen).toEqual(['end: client disconnect'])
    s.release()
  })

  it('carries, in order, the emits queued with it that fit in 64 KiB, and drops the rest', async () => {
    const s = await session(transport)
    // About 10 KB each, 100 KB in all: six fit with the CLOSE under 64 KiB, the seventh would not.
    for (let i = 0; i < 10; i++) s.socket.emit('numbered', i, 'x'.repeat(10_000))
    vi.stubGlobal('document', { visibilityState: 'hidden' })
    expect(starts(s.disconnect())).toEqual([
      {
        lines: [0, 1, 2, 3, 4, 5].map((i) => `[5,${i + 1},"numbered",[${i},"…"],0]`).concat(GOODBYE),
        keepalive: true,
      },
    ])
    await until(() => s.seen.length === 7, 3000, 'six emits and the end of the session')
    expect(s.seen).toEqual(['#0', '#1', '#2', '#3', '#4', '#5', 'end: client disconnect'])
  })

  it("carries the emits queued with it that fit under the server's maxPayload, in UTF-8 bytes", async () => {
    const s = await session(transport, { maxPayload: 20_000 })
    // 12 000 bytes each (6 000 characters): each under maxPayload, the two together past it. In
    // one body with the CLOSE, the server would refuse the whole (413) and end the session with
    // 'payload too large'.
    s.socket.emit('numbered', 0, 'é'.repeat(6_000))
    s.socket.emit('numbered', 1, 'é'.repeat(6_000))
    vi.stubGlobal('document', { visibilityState: 'hidden' })
    expect(starts(s.disconnect())).toEqual([
      { lines: ['[5,1,"numbered",[0,"…"],0]', GOODBYE], keepalive: true },
    ])
    await until(() => s.seen.length === 2, 3000, 'the first emit and the end of the session')
    expect(s.seen).toEqual(['#0', 'end: client disconnect'])
  })

  it('carries what is queued with it when that stays under 64 KiB', async () => {
    const s = await session(transport)
    s.socket.emit('note', 'x'.repeat(60_000))
    vi.stubGlobal('document', { visibilityState: 'hidden' })
    const sent = s.disconnect()
    expect(sent).toEqual([{ body: expect.stringMatching(/^\[5,1,"note"/), keepalive: true }])
    expect(sent[0]!.body.split('\n').at(-1)).toEqual(GOODBYE)
    await until(() => s.seen.length === 2, 3000, 'the note and the end of the session')
    expect(s.seen).toEqual(['x'.repeat(60_000), 'end: client disconnect'])
  })

  it('waits for the POST in flight when the page is visible, so that it overtakes nothing', async () => {
    const s = await session(transport)
    await s.holdNote()
    vi.stubGlobal('document', { visibilityState: 'visible' })
    expect(s.disconnect()).toEqual([])
    s.release()
    await until(() => s.seen.length === 2, 3000, 'the note and the end of the session')
    expect(s.seen).toEqual(['held', 'end: client disconnect'])
    expect(s.posts.at(-1)).toEqual({ body: GOODBYE, keepalive: false })
  })
})
