// The chat's server rules, driven by the Parley client in Node: what one client sends, right or
// wrong, must not leave the others looking at a wrong room, a wrong people list or a full server.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import { MAX_ROOM_NAME_LENGTH } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { until, within } from '../../../packages/server/test/helpers.js'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { buildChatApp, MAX_RATE_PERIOD } from '../src/app.js'
import { Nicknames } from '../src/nicknames.js'
import {
  type ChatAuth,
  ChatErrorCode,
  type ChatReply,
  type ClientEvents,
  DEFAULT_ROOMS,
  type HeardMessage,
  type JoinReply,
  Limits,
  ROOM_PATTERN,
  type ServerEvents,
} from '../src/shared.js'
import { type ChatStore, MemoryStore, StoreUnavailableError } from '../src/store.js'
import { pauseNextJoin } from './pausing-store.js'
import { RefusingStore } from './refusing-store.js'

describe('chat server', () => {
  let app: FastifyInstance
  let url: string
  let store: ChatStore
  const clients: Socket<ServerEvents, ClientEvents>[] = []
  /** Servers of the tests that need a store of their own. */
  const others: FastifyInstance[] = []

  /** Starts a chat server on 127.0.0.1, on a free port; its URL. */
  async function start(server: FastifyInstance): Promise<string> {
    await server.listen({ port: 0, host: '127.0.0.1' })
    return `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
  }

  beforeEach(async () => {
    store = new MemoryStore()
    app = await buildChatApp({ store })
    url = await start(app)
  })

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await app.close()
    for (const other of others.splice(0)) await other.close()
  })

  /** A connected client named `nickname`, in no room yet, of the server at `at`. */
  async function person(nickname: string, at = url): Promise<Socket<ServerEvents, ClientEvents>> {
    const [socket, refused] = await attempt({ nickname }, at)
    if (refused) throw new Error(`${nickname} was refused: ${refused}`)
    return socket
  }

  /** A client that connects with `auth`; with the code of the server's refusal, if it refused. */
  async function attempt(
    auth: ChatAuth,
    at = url,
  ): Promise<[Socket<ServerEvents, ClientEvents>, string | undefined]> {
    const socket = connect<ServerEvents, ClientEvents>(at, { auth: { ...auth }, transports: ['polling'] })
    clients.push(socket)
    const refused = await new Promise<string | undefined>((resolve) => {
      socket.once('connect', () => resolve(undefined))
      socket.on('connect_error', (error, willRetry) => {
        if (!willRetry) resolve(error.code)
      })
    })
    return [socket, refused]
  }

  const join = (socket: Socket<ServerEvents, ClientEvents>, room: string) =>
    new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))
  const say = (socket: Socket<ServerEvents, ClientEvents>, room: string, text: string) =>
    new Promise<ChatReply>((resolve) => socket.emit('chat', { room, text }, resolve))

  /** The typing states `socket` hears from now on, in order. */
  function typingHeard(socket: Socket<ServerEvents, ClientEvents>): boolean[] {
    const heard: boolean[] = []
    socket.on('typing', (state) => heard.push(state.typing))
    return heard
  }

  it('leaves a person in the room they asked for last when they click through rooms faster than the server answers', async () => {
    const eve = await person('eve')
    await join(eve, 'lobby')
    const replies = await Promise.all(['help', 'random', 'lobby', 'help'].map((room) => join(eve, room)))
    expect(replies.map((r) => r.ok && r.room)).toEqual(['help', 'random', 'lobby', 'help'])
    const [socket] = await app.parley.fetchSockets()
    expect(
      [...(socket?.rooms ?? [])].filter((r) => (DEFAULT_ROOMS as readonly string[]).includes(r)),
    ).toEqual(['help'])
    // Each room lists only who is in it.
    for (const room of ['lobby', 'random']) {
      const bob = await person(`bob-${room}`)
      const reply = await join(bob, room)
      expect(reply.ok && reply.people).toEqual([`bob-${room}`])
    }
  })

  it('gives someone joining a room the message another person sent while the join was under way, once', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(bob, 'lobby')
    expect(await say(bob, 'lobby', 'before')).toMatchObject({ ok: true })
    const heard: HeardMessage[] = []
    ann.on('chat', (m) => heard.push(m))
    // Stored once Ann's join has read the history, before it answers.
    pauseNextJoin(store, 'lobby', async () => {
      expect(await say(bob, 'lobby', 'during')).toMatchObject({ ok: true })
    })
    const reply = await join(ann, 'lobby')
    expect(await say(bob, 'lobby', 'after')).toMatchObject({ ok: true })
    await expect.poll(() => heard.map((m) => m.text)).toContain('after')
    expect(heard.map((m) => m.text)).toEqual(['during', 'after'])
    // As the page draws them: the history, then what it heard that the history does not have.
    const history = reply.ok ? reply.history : []
    const drawn = [...history, ...heard.filter((m) => !history.some((h) => h.id === m.id))]
    expect(drawn.map((m) => m.text)).toEqual(['before', 'during', 'after'])
    // Ann is listed in the room she joined, and nowhere else.
    expect(await join(bob, 'lobby')).toMatchObject({ ok: true, people: ['ann', 'bob'] })
  })

  it('still tells a room who left while the store cannot give the list a version, without one', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(ann, 'lobby')
    expect(await join(bob, 'lobby')).toMatchObject({ ok: true, people: ['ann', 'bob'] })
    const heard: { people: string[]; version?: number }[] = []
    ann.on('presence', ({ people, version }) => heard.push({ people, version }))
    store.peopleVersion = () => Promise.reject(new StoreUnavailableError('away'))
    bob.disconnect()
    await expect.poll(() => heard).toEqual([{ people: ['ann'], version: undefined }])
  })

  it('leaves a join the store could not answer out of the room and its people list', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(ann, 'lobby')
    await join(bob, 'random')
    const failing = store.join.bind(store)
    store.join = (room) =>
      room === 'random' ? Promise.reject(new StoreUnavailableError('away')) : failing(room)
    expect(await join(ann, 'random')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    const heard: string[] = []
    ann.on('chat', (m) => heard.push(m.text))
    expect(await say(bob, 'random', 'not for ann')).toMatchObject({ ok: true })
    expect(await say(bob, 'lobby', 'for ann')).toMatchObject({ ok: true })
    await expect.poll(() => heard).toEqual(['for ann'])
    store.join = failing
    expect(await join(bob, 'random')).toMatchObject({ ok: true, people: ['bob'] })
    expect(await join(bob, 'lobby')).toMatchObject({ ok: true, people: ['ann', 'bob'] })
  })

  it('passes on typing only for the room a join was answered for, not one the join is on its way to', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(ann, 'lobby')
    await join(bob, 'random')
    const typing: string[] = []
    bob.on('typing', (state) => typing.push(`${state.who} in ${state.room}`))
    // Ann's join of #random fails, and she types in #random while it is under way (the socket is
    // in Parley's room by then, before the store's answer). The server's own listener, after the
    // chat's, says when the signal was handled.
    const annThere = app.parley.sockets.get(String(ann.id))
    const handled = new Promise<void>((resolve) => annThere?.on('typing', () => resolve()))
    const joinOf = store.join.bind(store)
    store.join = async (room) => {
      if (room !== 'random') return joinOf(room)
      ann.emit('typing', { room: 'random', typing: true })
      await handled
      throw new StoreUnavailableError('away')
    }
    expect(await join(ann, 'random')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    store.join = joinOf
    // A message after it reaches Bob after anything the signal made him hear.
    const heard = new Promise<void>((resolve) => bob.on('chat', () => resolve()))
    expect(await say(ann, 'random', 'now in random')).toMatchObject({ ok: true })
    await heard
    expect(typing).toEqual([])
  })

  it('opens no room for a message it refuses', async () => {
    const zed = await person('zed')
    await join(zed, 'lobby')
    const send = (room: string, text: string) =>
      new Promise<ChatReply>((resolve) =>
        zed.emit('chat', { room, text, key: `${room}:${text}`.slice(0, 64) }, resolve),
      )
    const badMessage = { ok: false, code: ChatErrorCode.BAD_MESSAGE }
    expect(await send('ghost-empty', '   ')).toMatchObject(badMessage)
    expect(await send('ghost-long', 'x'.repeat(Limits.message + 1))).toMatchObject(badMessage)
    for (let i = 0; i < Limits.rate; i++) expect(await send('lobby', `m${i}`)).toMatchObject({ ok: true })
    expect(await send('ghost-rate', 'one too many')).toMatchObject({
      ok: false,
      code: ChatErrorCode.TOO_MANY_MESSAGES,
      retryIn: expect.any(Number),
    })
    expect((await store.rooms()).rooms.filter((room) => room.startsWith('ghost'))).toEqual([])
  })

  it('refuses a message of characters that show nothing as an empty one, and takes one that has them beside others', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(ann, 'lobby')
    await join(bob, 'lobby')
    const heard: string[] = []
    bob.on('chat', (m) => heard.push(m.text))
    const blanks = [
      '\u200B\u200B', // zero-width spaces
      '\u200E\u202E\u202C', // bidi marks and controls
      '\u2066\u2069', // a bidi isolate, empty
      ' \u200C\u200D\u2060 ', // joiners, between spaces
      '\uFE0F\u3164', // a variation selector and a Hangul filler
    ]
    for (const text of blanks) {
      expect(await say(ann, 'lobby', text), JSON.stringify(text)).toMatchObject({
        ok: false,
        code: ChatErrorCode.BAD_MESSAGE,
        error: expect.stringContaining('shows'),
      })
    }
    // An emoji sequence is joined with ZWJ: beside what shows, such characters are taken.
    const family = '\u{1F469}\u200D\u{1F467}'
    expect(await say(ann, 'lobby', family)).toMatchObject({ ok: true })
    await expect.poll(() => heard).toEqual([family])
    expect((await store.history('lobby')).map((m) => m.text)).toEqual([family])
  })

  it('counts the lengths of nicknames and messages in characters as people see them', async () => {
    // Each emoji is 2 UTF-16 units: by units, these would be twice the limits.
    const [emoji, refused] = await attempt({ nickname: '😀'.repeat(Limits.nickname) })
    expect(refused).toBeUndefined()
    expect((await attempt({ nickname: '😀'.repeat(Limits.nickname + 1) }))[1]).toBe(
      ChatErrorCode.BAD_NICKNAME,
    )
    await join(emoji, 'lobby')
    expect(await say(emoji, 'lobby', '🎉'.repeat(Limits.message))).toMatchObject({ ok: true })
    const badMessage = { ok: false, code: ChatErrorCode.BAD_MESSAGE }
    expect(await say(emoji, 'lobby', '🎉'.repeat(Limits.message + 1))).toMatchObject(badMessage)
    // One letter under a pile of accents is one character, but not an unbounded one.
    expect(await say(emoji, 'lobby', `a${'\u0301'.repeat(40 * Limits.message)}`)).toMatchObject(badMessage)
  })

  it('gives a resend after a restart that forgot the message the id the first one went out with', async () => {
    // `pnpm demo` restarted between storing a message and its answer: the new process, with a new
    // store in memory, stores the page's resend again; the others must be able to tell it is the same.
    const sendTo = async (at: string) => {
      const [ann, bob] = [await person('ann', at), await person('bob', at)]
      for (const s of [ann, bob]) await join(s, 'lobby')
      const heard = new Promise<HeardMessage>((resolve) => bob.on('chat', resolve))
      const reply = await new Promise<ChatReply>((resolve) =>
        ann.emit('chat', { room: 'lobby', text: 'only once', key: 'page-key-1' }, resolve),
      )
      for (const s of [ann, bob]) s.disconnect()
      return { reply, heard: await heard }
    }
    const before = await sendTo(url)
    const restarted = await buildChatApp({ store: new MemoryStore() })
    others.push(restarted)
    const after = await sendTo(await start(restarted))
    expect(before.reply).toMatchObject({ ok: true, id: before.heard.id })
    expect(after.reply).toMatchObject({ ok: true, id: before.heard.id })
    expect(after.heard).toMatchObject({ id: before.heard.id, text: 'only once' })
  })

  it("refuses a drain option that Parley would refuse, with Parley's code", async () => {
    await expect(buildChatApp({ handoff: { timeout: -1 } })).rejects.toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
    })
    await expect(buildChatApp({ handoff: { retrySpread: 0.5 } })).rejects.toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
    })
  })

  it("refuses a shutdown option that Parley would refuse, with Parley's code", async () => {
    await expect(buildChatApp({ shutdown: { retryAfter: -1 } })).rejects.toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
    })
    await expect(buildChatApp({ shutdown: { retrySpread: 0.5 } })).rejects.toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
    })
  })

  it('takes messages again once the ratePeriod it was given has passed, and says so in the refusal', async (context) => {
    // The limit's clock is the monotonic one (`monotonicNow`), held still (sockets and timers
    // keep the real time): on a loaded machine the six round trips took longer than the 300 ms
    // window, which had started anew before the sixth message.
    vi.useFakeTimers({ toFake: ['performance'] })
    context.onTestFinished(() => void vi.useRealTimers())
    const quick = await buildChatApp({ store: new MemoryStore(), ratePeriod: 300 })
    others.push(quick)
    const kai = await person('kai', await start(quick))
    await join(kai, 'lobby')
    for (let i = 0; i < Limits.rate; i++) expect(await say(kai, 'lobby', `m${i}`)).toMatchObject({ ok: true })
    const refused = await say(kai, 'lobby', 'one too many')
    expect(refused).toMatchObject({ ok: false, code: ChatErrorCode.TOO_MANY_MESSAGES })
    if (refused.ok) return
    expect(refused.error).toMatch(/^slow down: at most 5 messages in 0.3 s \(wait 1 s\)$/)
    expect(refused.retryIn).toBe(300)
    // Not a moment before the window ends, and at once when it does.
    vi.advanceTimersByTime(299)
    expect(await say(kai, 'lobby', 'one too many')).toMatchObject({
      ok: false,
      code: ChatErrorCode.TOO_MANY_MESSAGES,
    })
    vi.advanceTimersByTime(1)
    expect(await say(kai, 'lobby', 'one too many')).toMatchObject({ ok: true })
  })

  it('refuses a ratePeriod that is not a whole number of ms from 1 to an hour, with the code of options', async () => {
    for (const ratePeriod of [0, -1, 1.5, Number.NaN, MAX_RATE_PERIOD + 1]) {
      await expect(buildChatApp({ ratePeriod })).rejects.toMatchObject({
        code: 'PARLEY_INVALID_OPTION',
        option: 'ratePeriod',
      })
    }
  })

  it('tags messages with their browser and nickname, not the visitor id, and tells each page which tag is its own', async () => {
    const samsBrowser = 'sams-browser-0123456789'
    const connectAs = async (auth: ChatAuth) => {
      const [socket, refused] = await attempt(auth)
      expect(refused).toBeUndefined()
      return socket
    }
    const sam = await connectAs({ nickname: 'sam', visitor: samsBrowser })
    const samsTab = await connectAs({ nickname: 'sam', visitor: samsBrowser })
    const noVisitor = await connectAs({ nickname: 'node' })
    const [mine, again, none] = [
      await join(sam, 'lobby'),
      await join(samsTab, 'lobby'),
      await join(noVisitor, 'lobby'),
    ]
    const you = mine.ok ? mine.you : undefined
    expect(you).toEqual(expect.any(String))
    // One browser, one tag, in every tab; and nothing of the visitor id itself.
    expect(again).toMatchObject({ ok: true, you })
    expect(you).not.toContain(samsBrowser)
    expect(none.ok && 'you' in none).toBe(false)
    // The same name in another letter case is the same person, with the same tag.
    const shouting = await connectAs({ nickname: 'SAM', visitor: samsBrowser })
    expect(await join(shouting, 'lobby')).toMatchObject({ ok: true, you })
    // Under another name, the same browser has another tag: nobody can tell the two names apart
    // from two people's.
    const samAlias = await connectAs({ nickname: 'sammy', visitor: samsBrowser })
    const alias = await join(samAlias, 'lobby')
    const aliasTag = alias.ok ? alias.you : undefined
    expect(aliasTag).toEqual(expect.any(String))
    expect(aliasTag).not.toBe(you)

    const heard: HeardMessage[] = []
    noVisitor.on('chat', (m) => heard.push(m))
    await say(sam, 'lobby', 'by sam')
    await say(samAlias, 'lobby', 'by sammy')
    await say(noVisitor, 'lobby', 'by nobody in particular')
    await expect.poll(() => heard.length).toBe(2)
    expect(heard[0]).toMatchObject({ from: 'sam', by: you })
    expect(heard[1]).toMatchObject({ from: 'sammy', by: aliasTag })
    expect(JSON.stringify(heard)).not.toContain(samsBrowser)

    // Once sam has gone, someone else takes the name: the history's "sam" is not theirs.
    for (const s of [sam, samsTab, shouting, samAlias]) s.disconnect()
    let newSam: Socket<ServerEvents, ClientEvents> | undefined
    await expect
      .poll(async () => {
        const [socket, refused] = await attempt({ nickname: 'sam', visitor: 'another-browser-0123' })
        if (refused === undefined) newSam = socket
        return refused
      })
      .toBeUndefined()
    const joined = await join(newSam!, 'lobby')
    if (!joined.ok) throw new Error(joined.error)
    expect(joined.you).toEqual(expect.any(String))
    expect(joined.you).not.toBe(you)
    expect(joined.history.map((m) => [m.text, m.by])).toEqual([
      ['by sam', you],
      ['by sammy', aliasTag],
      ['by nobody in particular', undefined],
    ])
  })

  it('refuses a name that is not a room name with a code of its own', async () => {
    const kit = await person('kit')
    expect(await join(kit, 'Not a room!')).toEqual({
      ok: false,
      code: ChatErrorCode.BAD_ROOM_NAME,
      error: expect.stringMatching(/^room names are/),
    })
    expect(await join(kit, 'lobby')).toMatchObject({ ok: true, room: 'lobby' })
  })

  it('refuses a message to a name that is not a room name as such, before the store or the rate limit', async () => {
    // The store is away for this message: had it reached the store, it would be refused for that,
    // and hold back the messages after it.
    const away = new RefusingStore(['to nowhere'])
    const server = await buildChatApp({ store: away })
    others.push(server)
    const kit = await person('kit', await start(server))
    await join(kit, 'lobby')
    const send = (room: string, text: string) =>
      new Promise<ChatReply>((resolve) => kit.emit('chat', { room, text, key: text }, resolve))
    const badName = {
      ok: false,
      code: ChatErrorCode.BAD_ROOM_NAME,
      error: expect.stringMatching(/^room names are/),
    }
    for (const room of ['Not a room!', 'lobby:history', 'x'.repeat(10_000)]) {
      expect(await send(room, 'to nowhere')).toEqual(badName)
    }
    expect(await send('lobby', 'next')).toMatchObject({ ok: true })
    // Past the rate limit too, the name is what is wrong.
    for (let i = 1; i < Limits.rate; i++) expect(await send('lobby', `more ${i}`)).toMatchObject({ ok: true })
    expect(await send('lobby', 'one too many')).toMatchObject({
      ok: false,
      code: ChatErrorCode.TOO_MANY_MESSAGES,
    })
    expect(await send('Lobby', 'one too many')).toEqual(badName)
    expect((await away.history('lobby')).map((m) => m.text)).toEqual([
      'next',
      'more 1',
      'more 2',
      'more 3',
      'more 4',
    ])
  })

  it('lets one session open only a few rooms, so that one client cannot use up the rooms of everyone', async () => {
    const mal = await person('mal')
    for (let i = 0; i < Limits.roomsPerSession; i++) {
      expect(await join(mal, `mal-${i}`)).toMatchObject({ ok: true, room: `mal-${i}` })
    }
    const tooMany = {
      ok: false,
      code: ChatErrorCode.TOO_MANY_ROOMS_OPENED,
      error: expect.stringMatching(/^you have opened \d+ rooms already/),
    }
    expect(await join(mal, 'mal-more')).toEqual(tooMany)
    // A message to a new room would open it: counted the same.
    expect(await say(mal, 'mal-by-message', 'hi')).toEqual(tooMany)
    // Rooms that are there already are no opening.
    expect(await join(mal, 'lobby')).toMatchObject({ ok: true, room: 'lobby' })
    expect((await store.rooms()).rooms.filter((room) => room.startsWith('mal-'))).toHaveLength(
      Limits.roomsPerSession,
    )
    const ann = await person('ann')
    expect(await join(ann, 'ann-room')).toMatchObject({ ok: true, room: 'ann-room' })
  })

  it('makes way for a new room by forgetting the quietest one nobody is in, never one with people in it', async () => {
    const small = new MemoryStore({ rooms: DEFAULT_ROOMS.length + 2 })
    const server = await buildChatApp({ store: small })
    others.push(server)
    const at = await start(server)
    const [ann, bob, cy, dee] = [
      await person('ann', at),
      await person('bob', at),
      await person('cy', at),
      await person('dee', at),
    ]
    // Ann's room is the one used longest ago, but she is in it.
    await join(ann, 'ann-room')
    expect(await say(ann, 'ann-room', 'ann was here')).toMatchObject({ ok: true })
    await join(bob, 'bob-room')
    expect(await say(bob, 'bob-room', 'bob was here')).toMatchObject({ ok: true })
    await join(bob, 'lobby')
    expect((await small.rooms()).rooms).toHaveLength(DEFAULT_ROOMS.length + 2)

    const told = new Promise<string[]>((resolve) => ann.once('rooms', (rooms) => resolve(rooms)))
    const opened = [...DEFAULT_ROOMS, 'ann-room', 'cy-room']
    expect(await join(cy, 'cy-room')).toMatchObject({ ok: true, room: 'cy-room', rooms: opened })
    expect(await told).toEqual(opened)
    expect((await small.history('ann-room')).map((m) => m.text)).toEqual(['ann was here'])
    expect(await small.history('bob-room')).toEqual([])

    // Someone is in every room that could go: the new one is refused, and the page says why.
    expect(await join(dee, 'dee-room')).toEqual({
      ok: false,
      code: ChatErrorCode.ROOMS_FULL,
      error: expect.stringMatching(/^there are too many rooms, all in use/),
    })
    expect((await small.rooms()).rooms).toEqual(opened)
  })

  it('refuses a nickname someone else uses, in any letter case, and lets one person use theirs in two tabs', async () => {
    const samsBrowser = 'sams-browser-0123456789'
    const [sam] = await attempt({ nickname: 'Sam', visitor: samsBrowser })
    await join(sam, 'lobby')
    for (const other of [
      { nickname: 'Sam', visitor: 'another-browser-0123' },
      { nickname: ' sAM ', visitor: 'another-browser-0123' },
      { nickname: 'Sam' },
    ]) {
      expect((await attempt(other))[1]).toBe(ChatErrorCode.NICKNAME_TAKEN)
    }
    // Sam's second tab: the same browser, the same person, once in the people list.
    const [again, refused] = await attempt({ nickname: 'Sam', visitor: samsBrowser })
    expect(refused).toBeUndefined()
    expect(await join(again, 'lobby')).toMatchObject({ ok: true, people: ['Sam'] })
    // Once Sam has left, the name is free.
    for (const tab of [sam, again]) tab.disconnect()
    await expect.poll(() => attempt({ nickname: 'sam' }).then(([, code]) => code)).toBeUndefined()
  })

  it('refuses a nickname drawn as one in use, and takes one drawn otherwise', async () => {
    const flag = (region: string) =>
      `\u{1F3F4}${[...region].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('')}\u{E007F}`
    // Someone holds the first (and keeps it: one browser, many names); another browser asks for the
    // second, drawn the same.
    const alike: Array<[string, string]> = [
      ['Ann', 'Ann\uFE0F'], // a variation selector after a letter
      ['Ann', 'An\u034Fn'], // a combining grapheme joiner
      ['ann lee', 'Ann  Lee'], // two spaces, drawn as one
      ['\u{1F44D}\u{1F44D}', '\u{1F44D}\u200D\u{1F44D}'], // a ZWJ between emoji no font draws as one
      ['\u2764 bo', '\u2764\uFE0F bo'], // a heart in its emoji style
      ['\u{1F3F3}\uFE0F\u200D\u{1F308}', '\u{1F3F3}\u200D\u{1F308}'], // the rainbow flag without its VS16
      ['\u0915\u094D', '\u0915\u094D\u200C'], // a ZWNJ after a virama that ends the name
      ['\u0915\u0937', '\u0915\u200D\u0937'], // a ZWJ between Devanagari letters, no virama
      ['\u{1F3F4}', flag('usca')], // the tags of a flag that is no region's: a black flag
    ]
    for (const [held, asked] of alike) {
      const [, refused] = await attempt({ nickname: held, visitor: 'holders-browser-0123' })
      expect(refused, JSON.stringify(held)).toBeUndefined()
      expect(
        (await attempt({ nickname: asked, visitor: 'askers-browser-01234' }))[1],
        JSON.stringify(asked),
      ).toBe(ChatErrorCode.NICKNAME_TAKEN)
    }
    // Names that differ by what is drawn stay two names.
    const unlike: Array<[string, string]> = [
      ['\u{1F469}\u{1F680}', '\u{1F469}\u200D\u{1F680}'], // a woman and a rocket, an astronaut
      ['\u0645\u06CC\u062E\u0648\u0627\u0647\u0645', '\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645'], // Persian, parted by ZWNJ
      ['\u0915\u094D\u0937', '\u0915\u094D\u200D\u0937'], // a conjunct, a half form
      ['\u0D05\u0D35\u0D28\u0D4D', '\u0D05\u0D35\u0D28\u0D4D\u200D'], // a virama shown, a chillu
      ['\u{1F3F4}', flag('gbeng')], // a black flag, England's
      ['bolee', 'bo lee'],
    ]
    for (const [held, asked] of unlike) {
      const [, refused] = await attempt({ nickname: held, visitor: 'holders-browser-0123' })
      expect(refused, JSON.stringify(held)).toBeUndefined()
      expect(
        (await attempt({ nickname: asked, visitor: 'askers-browser-01234' }))[1],
        JSON.stringify(asked),
      ).toBeUndefined()
    }
  })

  it('gives a session that resumes under another nickname that name, or refuses it as a first connect would', async () => {
    const proxy = await startFaultProxy((app.server.address() as AddressInfo).port)
    onTestFinished(() => proxy.close())
    const [ann] = await attempt({ nickname: 'ann', visitor: 'anns-browser-0123456789' })
    await join(ann, 'lobby')
    const heard: string[][] = []
    ann.on('presence', (update) => heard.push(update.people))
    // Clients whose auth is asked again at each resume, as the page's is: what it says then wins.
    const names = { ben: 'ben', dan: 'dan' }
    const through = (who: keyof typeof names) => {
      const socket = connect<ServerEvents, ClientEvents>(proxy.url, {
        auth: () => ({ nickname: names[who], visitor: `${who}s-browser-0123456789` }),
        transports: ['websocket'],
      })
      clients.push(socket)
      return socket
    }
    const ben = through('ben')
    await within(new Promise<void>((resolve) => ben.once('connect', () => resolve())), 5000, "ben's connect")
    await join(ben, 'lobby')
    const typing: string[] = []
    ann.on('typing', (state) => typing.push(`${state.who} ${state.typing}`))
    ben.emit('typing', { room: 'lobby', typing: true })
    await until(() => typing.length === 1, 5000, "ben's typing")

    names.ben = 'Benedict'
    proxy.cut('websocket')
    await until(() => heard.at(-1)?.join() === 'Benedict,ann', 5000, 'the list with the new name')
    // The old name stops typing with the rename, rather than on the page's 3 s timer.
    await until(() => typing.length === 2, 5000, "the old name's typing ended")
    expect(typing).toEqual(['ben true', 'ben false'])
    // The list goes out from the resume's middleware, before ben has its OPEN: the resume is
    // taken, not refused, once ben is connected again.
    await until(() => ben.connected, 5000, "ben's resume")
    expect(await say(ben, 'lobby', 'renamed')).toMatchObject({ ok: true })
    expect((await store.history('lobby')).at(-1)).toMatchObject({ from: 'Benedict', text: 'renamed' })
    // The old name is free again, the new one held for this browser.
    expect((await attempt({ nickname: 'ben', visitor: 'another-browser-0123' }))[1]).toBeUndefined()
    expect((await attempt({ nickname: 'benedict', visitor: 'another-browser-0123' }))[1]).toBe(
      ChatErrorCode.NICKNAME_TAKEN,
    )

    // Names a first connect would refuse: the resume is refused with the same code.
    const dan = through('dan')
    await within(new Promise<void>((resolve) => dan.once('connect', () => resolve())), 5000, "dan's connect")
    const refusals = (socket: Socket<ServerEvents, ClientEvents>) =>
      new Promise<string>((resolve) =>
        socket.on('connect_error', (error, willRetry) => {
          if (!willRetry) resolve(error.code)
        }),
      )
    const refused = [refusals(ben), refusals(dan)]
    names.ben = 'ANN'
    names.dan = 'da\u200Bn'
    proxy.cut('websocket')
    expect(await within(Promise.all(refused), 5000, 'the refusals')).toEqual([
      ChatErrorCode.NICKNAME_TAKEN,
      ChatErrorCode.BAD_NICKNAME,
    ])
    // Their sessions keep the names they had.
    expect((await join(ann, 'lobby')) as { people?: string[] }).toMatchObject({ people: ['Benedict', 'ann'] })
  }, 40_000)

  it("keeps every room it makes within Parley's limit on room names", async () => {
    // Room names: ROOM_PATTERN takes at most Limits.roomName characters.
    expect(Limits.roomName).toBeLessThanOrEqual(MAX_ROOM_NAME_LENGTH)
    expect(ROOM_PATTERN.test('a'.repeat(Limits.roomName))).toBe(true)
    expect(ROOM_PATTERN.test('a'.repeat(Limits.roomName + 1))).toBe(false)
    // A nickname's room, for a name of 24 characters whose key would make it too long: 24 that
    // NFKC makes into 18 units each (a room of 441), or 24 long emoji sequences.
    // Every name whose room fits keeps the room older nodes name it by (a rolling restart).
    expect(Nicknames.roomOf('Sam')).toBe('nickname:sam')
    expect(Nicknames.roomOf('\uFDFA'.repeat(13))).toBe(`nickname:${'\uFDFA'.repeat(13).normalize('NFKC')}`)
    const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}'
    for (const long of ['\uFDFA'.repeat(Limits.nickname), family.repeat(Limits.nickname)]) {
      expect(Nicknames.roomOf(long).length).toBeLessThanOrEqual(MAX_ROOM_NAME_LENGTH)
      expect(Nicknames.roomOf(long)).not.toBe(Nicknames.roomOf(long.slice(0, -1)))
    }
  })

  it('takes a nickname of 24 long emoji sequences, and keeps it for one person, as any other', async () => {
    const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}'
    const name = family.repeat(Limits.nickname)
    // Past Parley's limit on room names as `nickname:<name>`: its room is named by a hash.
    expect(`nickname:${name}`.length).toBeGreaterThan(MAX_ROOM_NAME_LENGTH)
    const [ann, refused] = await attempt({ nickname: name, visitor: 'anns-browser-0123456789' })
    expect(refused).toBeUndefined()
    expect(await join(ann, 'lobby')).toMatchObject({ ok: true, people: [name] })
    expect((await attempt({ nickname: name, visitor: 'another-browser-0123' }))[1]).toBe(
      ChatErrorCode.NICKNAME_TAKEN,
    )
    // One character more is refused, with a message that says so.
    expect((await attempt({ nickname: family + name }))[1]).toBe(ChatErrorCode.BAD_NICKNAME)
  })

  it('refuses a nickname of characters that show nothing', async () => {
    const blanks = [
      '\u200B\u200B', // zero-width spaces
      '\u200E\u202E\u202C', // bidi marks and controls
      '\u2066\u2069', // a bidi isolate, empty
      ' \u200C\u200D\u2060 ', // joiners, between spaces
      '\uFE0F\u3164', // a variation selector and a Hangul filler
    ]
    for (const nickname of blanks) {
      const [socket, refused] = await attempt({ nickname })
      expect(refused, JSON.stringify(nickname)).toBe(ChatErrorCode.BAD_NICKNAME)
      expect(socket.connected).toBe(false)
    }
  })

  it('refuses a nickname with a format character drawn as nothing between its letters, and says which', async () => {
    const hidden = [
      'ad\u200Bmin', // zero-width space: drawn "admin"
      'ad\u200Dmin', // a joiner between Latin letters, which it joins to nothing
      'ad\u200Cmin', // a non-joiner, the same
      'ad\u2060min', // word joiner
      'ad\uFEFFmin', // zero-width no-break space
      'ad\u00ADmin', // soft hyphen
      'admin\u200E', // left-to-right mark
      '\u200F\u05E0\u05D5\u05E2\u05DD 2', // right-to-left mark: the page isolates names, none is needed
      '\u{1F468}\u200Dann', // a joiner between an emoji and a letter
      'ann\u200D', // a joiner at the end, after nothing it could join
      '\u0D05\u0D35\u0D28\u200D', // the same after a Malayalam letter without a virama
      '\u0D05\u0D35\u0D28\u0D4D\u200D\u200D', // a second joiner after the virama's
    ]
    for (const nickname of hidden) {
      const [socket, refused] = await attempt({ nickname })
      expect(refused, JSON.stringify(nickname)).toBe(ChatErrorCode.BAD_NICKNAME)
      expect(socket.connected).toBe(false)
    }
    const words = await new Promise<string>((resolve) => {
      const socket = connect<ServerEvents, ClientEvents>(url, {
        auth: { nickname: 'ad\u200Bmin' },
        transports: ['polling'],
      })
      clients.push(socket)
      socket.on('connect_error', (error, willRetry) => {
        if (!willRetry) resolve(error.message)
      })
    })
    expect(words).toContain('invisible format characters (U+200B here)')
  })

  it('takes the joiners emoji sequences and joining scripts need, and flags of regions', async () => {
    const names = [
      '\u{1F469}\u{1F3FD}\u200D\u{1F680}', // an astronaut with a skin tone
      '\u{1F3F3}\u{FE0F}\u200D\u{1F308}', // the rainbow flag
      '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}', // England's flag (tags)
      '\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645', // Persian, with a non-joiner
      '\u0915\u094D\u200D\u0937', // Devanagari, a half form with a joiner
      '\u0D05\u0D35\u0D28\u0D4D\u200D', // Malayalam, a chillu typed the old way: virama and ZWJ at the end
      '\u0D05\u0D35\u0D7B \u0D05\u0D35\u0D28\u0D4D\u200D', // the same at the end of a word
      '\u0915\u094D\u200C', // Devanagari, a virama shown with a non-joiner after it
    ]
    for (const nickname of names) {
      const [socket, refused] = await attempt({ nickname })
      expect(refused, JSON.stringify(nickname)).toBeUndefined()
      expect(await join(socket, 'lobby')).toMatchObject({
        ok: true,
        people: expect.arrayContaining([nickname]),
      })
    }
  })

  it('refuses a nickname with a bidi embedding, override or isolate in it, and takes names in right-to-left scripts', async () => {
    const disguised = [
      '\u202Enimda', // right-to-left override: drawn "admin"
      'ad\u202Dmin', // left-to-right override
      '\u202Aann\u202C', // embedding and its pop
      '\u202Bbob', // right-to-left embedding
      'eve\u2067\u2069', // right-to-left isolate and its pop
      '\u2066kim', // left-to-right isolate
      'zo\u2068e', // first-strong isolate
    ]
    for (const nickname of disguised) {
      const [socket, refused] = await attempt({ nickname })
      expect(refused, JSON.stringify(nickname)).toBe(ChatErrorCode.BAD_NICKNAME)
      expect(socket.connected).toBe(false)
    }
    const words = await new Promise<string>((resolve) => {
      const socket = connect<ServerEvents, ClientEvents>(url, {
        auth: { nickname: '\u202Enimda' },
        transports: ['polling'],
      })
      clients.push(socket)
      socket.on('connect_error', (error, willRetry) => {
        if (!willRetry) resolve(error.message)
      })
    })
    expect(words).toContain('bidi')
    // Arabic and Hebrew letters are drawn as they are (a name with a bidi mark is refused: see
    // the test of format characters).
    const names = ['\u0633\u0627\u0631\u0629', '\u05D3\u05E0\u05D4', '\u05E0\u05D5\u05E2\u05DD 2']
    for (const nickname of names) {
      const [socket, refused] = await attempt({ nickname })
      expect(refused, JSON.stringify(nickname)).toBeUndefined()
      expect(await join(socket, 'lobby')).toMatchObject({
        ok: true,
        people: expect.arrayContaining([nickname]),
      })
    }
  })

  it('takes a join and a message from a client that wants no reply, and logs no error for them', async () => {
    const failures = vi.spyOn(app.log, 'error')
    const ned = await person('ned')
    // As a client that is not the page may send them: no reply callback.
    const emit = ned.emit.bind(ned) as (event: string, payload: unknown) => void
    emit('join', { room: 'help' })
    emit('chat', { room: 'help', text: 'no reply wanted' })
    emit('chat', { room: 'help', text: '   ' })
    // A reply after them all: the server has handled every one by then.
    const reply = await join(ned, 'help')
    expect(reply).toMatchObject({ ok: true, room: 'help' })
    expect(reply.ok && reply.history.map((m) => m.text)).toEqual(['no reply wanted'])
    expect(failures).not.toHaveBeenCalled()
  })

  it('refuses an event of the wrong shape before any handler, with the code Parley gives it', async () => {
    const [ann, mal] = [await person('ann'), await person('mal')]
    await join(ann, 'lobby')
    await join(mal, 'lobby')
    const typing = typingHeard(ann)
    // As a client that is not the page may send them.
    const ask = mal.timeout(2000).emitWithAck.bind(mal) as (
      event: string,
      payload: unknown,
    ) => Promise<unknown>
    const emit = mal.emit.bind(mal) as (event: string, payload: unknown) => void
    const errors: string[] = []
    mal.on('error', (error) => errors.push(error.code))
    const refused = (event: string, payload: unknown) =>
      ask(event, payload).then(
        () => 'taken',
        (error: { code: string }) => error.code,
      )
    expect(await refused('chat', { room: 'lobby', text: 42 })).toBe('PARLEY_VALIDATION_FAILED')
    expect(await refused('chat', { room: 'lobby', text: 'hi', html: '<b>hi</b>' })).toBe(
      'PARLEY_VALIDATION_FAILED',
    )
    expect(await refused('chat', { room: 'lobby', text: 'hi', key: 'k'.repeat(65) })).toBe(
      'PARLEY_VALIDATION_FAILED',
    )
    expect(await refused('join', { room: ['help'] })).toBe('PARLEY_VALIDATION_FAILED')
    emit('typing', { room: 'lobby', typing: 'yes' })
    await expect.poll(() => errors).toEqual(['PARLEY_VALIDATION_FAILED'])
    // None of them reached a handler: nothing stored, nobody moved, no typing passed on.
    expect(await store.history('lobby')).toEqual([])
    expect((await join(mal, 'lobby')).ok).toBe(true)
    expect(typing).toEqual([])
  })

  it('passes on at most a few typing signals a second from one person, however many they send', async () => {
    const [ann, mal] = [await person('ann'), await person('mal')]
    await join(ann, 'lobby')
    await join(mal, 'lobby')
    const heard = typingHeard(ann)
    // On the limit's clock, the monotonic one.
    const sent = performance.now()
    for (let i = 0; i < 200; i++) mal.emit('typing', { room: 'lobby', typing: i % 2 === 0 })
    // A reply after them all: the server has read every one by then.
    await join(mal, 'lobby')
    // However slow the machine, the server read them all within this time, and passes on a
    // burst and then one signal per typingGap at most: the bound follows the time the server
    // took, not a guess. Alternating "typing" and "stopped" buys no more than either alone.
    const most = Math.floor((performance.now() - sent) / Limits.typingGap) + Limits.typingBurst
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(heard.length).toBeGreaterThan(0)
    expect(heard.length).toBeLessThanOrEqual(most)
  })

  it('passes on typing that starts again right after a message, without waiting for the gap', async () => {
    const [ann, bob] = [await person('ann'), await person('bob')]
    await join(ann, 'lobby')
    await join(bob, 'lobby')
    const typing = typingHeard(ann)
    const heard: string[] = []
    ann.on('chat', (message) => heard.push(message.text))
    // As the page does: "typing" at the first key, "stopped" on sending, "typing" at the next key.
    bob.emit('typing', { room: 'lobby', typing: true })
    bob.emit('typing', { room: 'lobby', typing: false })
    expect(await say(bob, 'lobby', 'hi')).toMatchObject({ ok: true })
    bob.emit('typing', { room: 'lobby', typing: true })
    // Sent after the last signal, so heard after it: by then ann has every signal passed on.
    await say(bob, 'lobby', 'again')
    await expect.poll(() => heard).toEqual(['hi', 'again'])
    expect(typing).toEqual([true, false, true])
  })

  it('refuses one person switching rooms in a loop, so that the others do not get presence without end', async () => {
    const ann = await person('ann')
    await join(ann, 'lobby')
    let updates = 0
    ann.on('presence', () => updates++)
    const mal = await person('mal')
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) => join(mal, i % 2 === 0 ? 'lobby' : 'random')),
    )
    const refused = replies.filter((r) => !r.ok)
    expect(refused.length).toBeGreaterThan(0)
    expect(refused[0]).toEqual({
      ok: false,
      code: ChatErrorCode.TOO_MANY_ROOM_CHANGES,
      error: expect.stringMatching(/^slow down/),
    })
    // Each change into or out of the lobby is one update there.
    expect(updates).toBeLessThanOrEqual(Limits.roomChanges)
  })

  it('refuses a flood of joins of the room a socket is in, and still takes a few and its changes of room', async () => {
    const mal = await person('mal')
    expect(await join(mal, 'lobby')).toMatchObject({ ok: true, room: 'lobby' })
    // Each join answered costs the store a step, and a history in the answer.
    const reads = vi.spyOn(store, 'join')
    const replies = await Promise.all(Array.from({ length: 40 }, () => join(mal, 'lobby')))
    // A few, as the page asks again after its session moved: answered as any join.
    expect(replies.slice(0, Limits.rejoins)).toMatchObject(
      Array.from({ length: Limits.rejoins }, () => ({ ok: true, room: 'lobby' })),
    )
    // Past them, refused before the store is asked.
    const refused = replies.slice(Limits.rejoins)
    expect(new Set(refused.map((r) => !r.ok && r.code))).toEqual(
      new Set([ChatErrorCode.TOO_MANY_ROOM_CHANGES]),
    )
    expect(refused[0]).toMatchObject({ error: expect.stringMatching(/^slow down: you are in this room/) })
    expect(reads).toHaveBeenCalledTimes(Limits.rejoins)
    // The changes of room are counted apart: the person still goes where they click.
    expect(await join(mal, 'random')).toMatchObject({ ok: true, room: 'random' })
    expect(await join(mal, 'lobby')).toMatchObject({ ok: true, room: 'lobby' })
  })

  it('does not count a join the store could not answer against the limits of joins', async () => {
    // A store that fails every call while `away` (as the Redis store does while Redis is down).
    let away = false
    const inner = new MemoryStore()
    const flaky = new Proxy(inner, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) =>
          away ? Promise.reject(new StoreUnavailableError('away')) : value.apply(target, args)
      },
    })
    const server = await buildChatApp({ store: flaky })
    others.push(server)
    const at = await start(server)
    const ann = await person('ann', at)
    expect(await join(ann, 'lobby')).toMatchObject({ ok: true })

    // The page tries again every 2 s while the store is away: more tries than changes allowed.
    away = true
    for (let i = 0; i < Limits.roomChanges + 2; i++) {
      expect(await join(ann, 'random')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    }
    // Nor as a join of the room it is in (asked again after its session moved, say).
    for (let i = 0; i < Limits.rejoins + 2; i++) {
      expect(await join(ann, 'lobby')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    }
    away = false
    expect(await join(ann, 'lobby')).toMatchObject({ ok: true, room: 'lobby' })
    expect(await join(ann, 'random')).toMatchObject({ ok: true, room: 'random' })
  })

  it("keeps a person's messages in order when the store comes back between a refused one and the next on its way", async () => {
    // The store refuses one message (Redis away) and is back for the next, already on its way.
    const flaky = new RefusingStore(['first'])
    const server = await buildChatApp({ store: flaky })
    others.push(server)
    const at = await start(server)
    const [ann, bob] = [await person('ann', at), await person('bob', at)]
    await join(ann, 'lobby')
    await join(bob, 'lobby')
    const heard: string[] = []
    bob.on('chat', (m) => heard.push(m.text))
    const send = (text: string) =>
      new Promise<ChatReply>((resolve) => ann.emit('chat', { room: 'lobby', text, key: text }, resolve))

    // As the page sends them: the second before the answer to the first.
    const replies = await Promise.all([send('first'), send('second')])
    // The page sends them again in its queue's order, each once the one before was answered.
    for (const text of ['first', 'second']) expect(await send(text)).toMatchObject({ ok: true })
    expect((await flaky.history('lobby')).map((m) => m.text)).toEqual(['first', 'second'])
    await expect.poll(() => heard).toEqual(['first', 'second'])
    // The second waited for the first: refused the same way, and sent again behind it.
    const away = { ok: false, code: ChatErrorCode.STORE_UNAVAILABLE }
    expect(replies).toMatchObject([away, away])
  })
})
