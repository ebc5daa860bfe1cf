// The chat page. It talks to the server only through the Parley client loaded by
// <script src="/parley.min.js"> (the package's own browser build), and renders every piece of
// text with textContent: nothing a user types is ever parsed as HTML.
import type { Socket } from '@parley/client'
import { nicknameKey } from '../nickname-key.js'
import {
  type ChatAuth,
  ChatErrorCode,
  type ChatMessage,
  type ChatReply,
  type ClientEvents,
  type HeardMessage,
  type JoinReply,
  Limits,
  type ServerEvents,
} from '../shared.js'
import {
  closeWords,
  refusalWords,
  sentence,
  type TransportName,
  transportFailure,
  transportName,
} from './describe-failure.js'
import { EarlyMessages } from './early-messages.js'
import { HeldMessages } from './held-messages.js'
import { PeopleLists } from './people-lists.js'
import { StalledMessages } from './stalled-messages.js'
import { storeRetryFrom } from './store-retry.js'
import { createView, type Said, type Tick } from './view.js'

declare const Parley: typeof import('@parley/client')

const view = createView()
const params = new URLSearchParams(location.search)
const TRANSPORTS: readonly string[] = ['websocket', 'sse', 'polling']
/** `?transports=sse,polling`: the order to try, to see fallback by hand. Unknown names are left out. */
const forced = (params.get('transports') ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter((name): name is TransportName => TRANSPORTS.includes(name))

let socket: Socket<ServerEvents, ClientEvents> | undefined
let nickname = ''
/** This browser's id: its tabs are one person, who may use one nickname in all of them. */
const visitor = browserId()
/** The tag of this browser's messages under its nickname (`ChatMessage.by`), as a join's answer tells it. */
let you: string | undefined
/**
 * The tags of this browser's other nicknames: each name has its own (so that nobody else can tell
 * that one browser used them), kept in localStorage as its tabs' joins learn them.
 */
const ownTags = new Set(keptTags())
let room = params.get('room') ?? 'lobby'
/** The room the person last clicked (or the page joins again), until every join is answered. */
let heading: string | undefined
/** Joins sent and not answered yet. */
let joining = 0
/** Messages of rooms joins are on their way to, heard before the answer. */
const early = new EarlyMessages()
/**
 * The session changed transport (or resumed) while joins were on their way: it may have moved
 * to another node, which took it as it was at that moment, before the joins were done. Once they
 * are answered, the page joins its room once more, so that the server's room is the page's.
 */
let moved = false
/**
 * How many times the session resumed: each may be a move to another node (a drain, or a resume
 * that lands on another node), which finishes what was under way on the old one. A `transport`
 * event (a change of transport, or a resume without a disconnect) or a `connect` that recovered
 * the session after a `disconnect`: that one resumed it too, and on any node.
 */
let moves = 0
/** Why the last join was refused, for messages held for a room the page never got to. */
let refused = ''
/** Messages written for the room the page is on its way to. */
const held = new HeldMessages()
/**
 * Our messages on their way to a room (sent, queued, waiting for the store), until answered for
 * good, and their rooms: a list drawn anew for a room (the page went to another one and back
 * before they were stored, so its history lacks them) draws them again.
 */
const onTheirWay = new Map<Tick, string>()
/** The room the message list shows: joining it again adds what is missing, keeping the rest. */
let drawn: string | undefined
/** Ids of the messages in the list, so that none shows twice. */
const shown = new Set<string>()
/** The newest people list heard for each room (a join's answer included). */
const peopleLists = new PeopleLists()
/** The newest rooms list heard, and its version (see `drawRooms`). */
let roomList = { rooms: [] as string[], version: Number.NEGATIVE_INFINITY }
/** Ticks of messages written while offline: the client keeps them and sends them on connect. */
const waiting = new Set<Tick>()
/** Why each transport is the one in use, kept for a reconnect that goes straight back to it. */
const reasons = new Map<TransportName, Said>()
/**
 * The transport carrying the chat, if any: a failure of that one is a connection that dropped;
 * of another, a transport that could not open (on a WebSocket, most often a network that lets
 * none through).
 */
let attached: TransportName | null = null
let everConnected = false
/**
 * True from `disconnect` to the next `connect`: the application was told the connection is
 * down. Not the same as `socket.connected` being false: while a node hands the session to
 * another one (a deploy), the client is between transports without a word to the application,
 * and the page says nothing either.
 */
let down = false
/** What the banner says while there is no connection. */
const outage = { reason: '', attempt: 0, error: '' }
/** The last failure, kept until the transport it led to says why it is the one in use. */
let failure: { transport: TransportName; words: string; detail: string } | undefined
/** `?storeRetry=<ms>`: the wait before a STORE_UNAVAILABLE refusal is asked again (2000 ms without it). */
const storeRetry = storeRetryFrom(params)
const STORE_RETRY_MS = storeRetry.ms
const STORE_AWAY = 'History is unavailable just now: retrying… What you write waits and goes once it is back.'
/** True from a STORE_UNAVAILABLE refusal to the next join or message the server takes. */
let storeAway = false
/** The next try of a join refused with STORE_UNAVAILABLE. */
let rejoin: ReturnType<typeof setTimeout> | undefined
/** Messages refused with STORE_UNAVAILABLE, sent again in order. */
const stalled = new StalledMessages(STORE_RETRY_MS)

view.onJoin((name) => {
  nickname = name
  start()
  // Said where the chat shows it, rather than a wait that silently differs from the one asked for.
  if (storeRetry.refused !== undefined) view.error(storeRetry.refused)
})

function start(): void {
  const s = Parley.connect<ServerEvents, ClientEvents>(location.origin, {
    ...(forced.length > 0 ? { transports: forced } : {}),
    auth: () => ({ nickname, visitor }) satisfies ChatAuth,
  })
  socket = s
  s.on('connect', () => {
    const transport = s.transport as TransportName
    attached = transport
    const failed = lastFailure()
    if (failed) {
      const next =
        failed.transport === transport ? 'connected again' : `using ${transportName(transport)} instead`
      reasons.set(transport, { words: `${failed.words}: ${next}`, detail: failed.detail })
    }
    view.transport(transport, reasons.get(transport) ?? firstReason(transport))
    for (const tick of waiting) tick.sent()
    waiting.clear()
    if (!everConnected) view.banner(undefined)
    else if (s.recovered) view.banner('Reconnected: nothing was lost.', 3000)
    else view.banner('Reconnected with a new session: the room is joined again.', 3000)
    everConnected = true
    down = false
    Object.assign(outage, { reason: '', attempt: 0, error: '' })
    // A resumed session is still in its room; a new one must join again: the room last clicked,
    // if its join is still on its way (clicked offline, say). Its old join goes in the new session
    // too, and so do the messages held for it once it is answered: another room joined after it
    // would have the page show one room while the server, taking such a message, puts it in that one.
    if (!s.recovered) return enter(heading ?? room)
    moves++
    if (joining > 0) moved = true
  })
  s.on('transport_error', (transport, error) => {
    const words = transportFailure(transport, error, transport === attached)
    failure = { transport, words, detail: `${transport} ${describe(error)}` }
  })
  s.on('transport', (now, before, why) => {
    attached = now
    // What was lost on the way (or could not be opened) says why it moved; taken here, or the
    // next `connect` would show it as its own.
    const failed = lastFailure()
    const detail = failed ? `${why} from ${before} (${failed.detail})` : `${why} from ${before}`
    const reason = { words: movedWords(now, why, failed), detail }
    reasons.set(now, reason)
    view.transport(now, reason)
    moves++
    if (joining > 0) moved = true
    // Written while the session moved (a resume without a disconnect): on its way now.
    for (const tick of waiting) tick.sent()
    waiting.clear()
  })
  s.on('disconnect', (reason) => {
    down = true
    attached = null
    view.transport(null, { words: closeWords(reason), detail: reason })
    Object.assign(outage, { reason, attempt: 0, error: '' })
    showOutage()
  })
  s.on('reconnect_attempt', (n) => {
    // Failures of earlier attempts say nothing about the transport the next one lands on.
    lastFailure()
    Object.assign(outage, { attempt: n, error: '' })
    // Also heard while a session moves between nodes: nothing to say then.
    if (down) showOutage()
  })
  s.on('connect_error', (error, willRetry) => {
    // The name is the problem, not the connection: ask for another one.
    if (error.code === ChatErrorCode.NICKNAME_TAKEN || error.code === ChatErrorCode.BAD_NICKNAME) {
      // Let go first: what the client still keeps fails as it ends (see `onSend`), not sent again.
      socket = undefined
      s.disconnect()
      view.askNickname(error.message)
      return
    }
    outage.error = describe(error)
    // The client gives up when the server refused us (not the network) or attempts ran out.
    if (!willRetry) {
      const words = refusalWords(error) ?? error.message
      view.banner(
        `Cannot connect: ${words}. Reload the page to try again.`,
        undefined,
        `${error.code}: ${error.message}`,
      )
    }
    // Also heard while a session moves between nodes: nothing to say then.
    else if (down || !everConnected) showOutage()
  })
  s.on('chat', (message) => {
    // A message of the room the page is joining waits for the join's answer, to go after the history.
    if (message.room !== room) return void early.keep(message)
    view.typing(message.from, false)
    show(message, true)
  })
  s.on('presence', (update) => {
    // Kept also for a room the page is joining: its answer's list may be older than this one.
    const people = peopleLists.heard(update.room, update.people, update.version)
    if (update.room === room) view.people(people)
  })
  s.on('typing', (state) => {
    if (state.room === room && !isMe(state.who)) view.typing(state.who, state.typing)
  })
  s.on('rooms', drawRooms)
}

/**
 * Why a page that has not failed on anything is on `transport`: the first one it tries, or one
 * further down that the client went to straight away, as the one that worked here last time (it
 * remembers it, per server, for an hour: a reload on SSE because WebSocket was refused starts there).
 */
function firstReason(transport: TransportName): Said {
  const order = forced.length > 0 ? forced : TRANSPORTS
  const words = transport === order[0] ? 'connected' : 'worked here last time'
  return { words, detail: words }
}

/** The failure since the last attempt began, taken: it explains one transport's arrival only. */
function lastFailure(): typeof failure {
  const failed = failure
  failure = undefined
  return failed
}

/** Why the session went on over `now` without the chat losing anything (`transport` event). */
function movedWords(
  now: TransportName,
  why: 'upgrade' | 'downgrade' | 'resume',
  failed: typeof failure,
): string {
  if (why === 'upgrade') return `switched to ${transportName(now)}, which works here`
  // A resume nothing failed before: the server moved the session (a node drained in a deploy).
  if (!failed) return 'moved to another server: nothing was lost'
  const next = failed.transport === now ? 'picked up again' : `carried on over ${transportName(now)}`
  return `${failed.words}: ${next}, nothing was lost`
}

/** The banner while offline: what happened, what the page does about it, and what waits to be sent. */
function showOutage(): void {
  // Those held for a room clicked meanwhile go too, once the page is there.
  const count = waiting.size + held.size
  const messages = `${count} message${count === 1 ? '' : 's'}`
  const what = everConnected ? sentence(closeWords(outage.reason)) : 'Cannot reach the server'
  // The client makes no attempt while the browser knows it is offline; `online` wakes it.
  const words = navigator.onLine
    ? `${what}: reconnecting${outage.attempt > 0 ? ` (attempt ${outage.attempt})` : ''}…${count > 0 ? ` ${messages} will be sent once connected.` : ''}`
    : `You’re offline: ${count > 0 ? `${messages} will be sent` : 'the chat reconnects'} when you’re back.`
  // The client's own words, for whoever wants to know what failed.
  const lost = everConnected ? `disconnect: ${outage.reason || 'transport close'}` : 'not connected yet'
  const attempt =
    outage.attempt > 0 ? `; attempt ${outage.attempt}${outage.error ? ` failed: ${outage.error}` : ''}` : ''
  view.banner(words, undefined, `${lost}${attempt}`)
}

/** The requests the page makes, and their replies. */
interface Replies {
  join: JoinReply
  chat: ChatReply
}
/** A refusal of the chat's (with its code), or of the client's (`code`: a Parley error code, if any). */
type Refusal = { ok: false; error: string; code?: string }

/**
 * Sends a request; `done` gets the reply the moment the client reads it, in order with the
 * events around it. (A promise runs its continuation only after the events that came in the
 * same batch as the reply: a newer presence list would be drawn, then overwritten by the older
 * one in the reply.) No time limit: through an outage the client keeps the request and sends it
 * after reconnecting, so a late reply is not a failure.
 */
function request<K extends keyof Replies>(
  event: K,
  payload: Parameters<ClientEvents[K]>[0],
  done: (reply: Replies[K] | Refusal) => void,
): void {
  if (!socket) return
  const settle = (error: (Error & { code?: string }) | null, reply?: Replies[K]) =>
    done(reply && !error ? reply : { ok: false, error: error?.message ?? 'no answer', code: error?.code })
  // With timeout(), the client calls back error first. (K is generic here, so its argument list
  // is spelled out: TypeScript cannot resolve the map's entry for a K it does not know yet.)
  const emit = socket.timeout(Number.POSITIVE_INFINITY).emit as (
    event: K,
    payload: Parameters<ClientEvents[K]>[0],
    ack: typeof settle,
  ) => void
  try {
    emit(event, payload, settle)
  } catch (error) {
    // Thrown at once when the client cannot keep it (PARLEY_QUEUE_FULL, ...).
    settle(error as Error)
  }
}

function enter(next: string): void {
  clearTimeout(rejoin)
  heading = next
  joining++
  early.expect(next)
  request('join', { room: next }, (reply) => {
    joining--
    const messages = early.answered(next, reply.ok ? reply.history : undefined)
    if (reply.ok) {
      storeNotice(false)
      draw(reply, messages)
    } else if (
      reply.code === Parley.ErrorCode.SESSION_MOVED ||
      reply.code === Parley.ErrorCode.DISCONNECTED
    ) {
      // The node that had the session handed it on before it answered (or the session ended
      // first: the server stopped): the node that has it now is asked (unless another join came
      // meanwhile, such as a new session's: it is the one that counts). Not a refusal.
      if (joining === 0 && socket) {
        moved = false
        enter(next)
      }
      return
    } else if ('code' in reply && reply.code === ChatErrorCode.STORE_UNAVAILABLE) {
      // The session moved while the join was on its way: the answer may be the old node's, and
      // the node that has the session now finishes the join, with its own store. Asked at once,
      // it says how that went; not a wait for the store (unless it refuses too).
      if (moved && joining === 0) {
        moved = false
        return enter(next)
      }
      // Not the room's fault, nor the person's: the page asks again by itself, and what was
      // written for the room keeps waiting for it. Unless another join (a click, a new session)
      // came meanwhile: it is the one that counts.
      storeNotice(true)
      if (joining === 0) rejoin = setTimeout(() => enter(next), STORE_RETRY_MS)
      return
    } else {
      refused = reply.error
      view.error(reply.error)
      // The room the page is meant to be in (`?room=`, or the one to join again on a new
      // session) cannot be: the lobby, rather than no room at all. A click that fails stays put,
      // and so does a join of the room the page is in refused for its pace (clicked again and
      // again, say): it says nothing of the room, which the server still has the socket in.
      const pace = reply.code === ChatErrorCode.TOO_MANY_ROOM_CHANGES
      if (next === room && next !== 'lobby' && !pace) enter('lobby')
    }
    if (joining > 0) return
    if (moved) {
      moved = false
      return enter(room)
    }
    heading = undefined
    held.settled(`not sent: ${refused}`)
  })
}

/** Says, or stops saying, that the store is away; a lost connection's banner says more, and stays. */
function storeNotice(away: boolean): void {
  if (away === storeAway) return
  storeAway = away
  if (!down) view.banner(away ? STORE_AWAY : undefined)
}

/**
 * The room the server put the page in: its list, people and `messages` (its history, then what
 * was heard before the answer), then what was held for it.
 */
function draw(reply: Extract<JoinReply, { ok: true }>, messages: readonly ChatMessage[]): void {
  room = reply.room
  // Kept when an answer has none: a node of an older version of the chat (a rolling upgrade) says
  // nothing of it, and this browser's tag has not changed.
  if (reply.you !== undefined) {
    you = reply.you
    keepTag(you)
  }
  const cleared = drawn !== room
  if (cleared) {
    drawn = room
    shown.clear()
    view.clearMessages()
  }
  drawRooms(reply.rooms, reply.roomsVersion)
  // A list the server could not make (this person alone) is kept without its version: the room's
  // next list replaces it, whatever its version.
  const unavailable = reply.peopleUnavailable === true
  const version = unavailable ? undefined : reply.peopleVersion
  view.people(peopleLists.heard(reply.room, reply.people, version), unavailable)
  for (const message of messages) show(message)
  if (cleared) for (const [tick, to] of onTheirWay) if (to === room) tick.redraw()
  held.arrived(room)
}

/**
 * Draws the rooms list, or the newest one drawn so far if that one is newer: in a cluster, the
 * lists that two nodes send (and a join's reply) may arrive in another order than they were made.
 */
function drawRooms(rooms: string[], version: number): void {
  if (version >= roomList.version) roomList = { rooms, version }
  view.rooms(roomList.rooms, room)
}

/** Whether `name` is this person's: another tab of this browser may spell it in another letter case. */
function isMe(name: string): boolean {
  return nicknameKey(name) === nicknameKey(nickname)
}

/**
 * Whether a message is this browser's: by its `by`, not its nickname, which someone else may have
 * used before (their messages, in a history, are not ours).
 */
function isMine(message: HeardMessage): boolean {
  const by = message.by
  if (by === undefined) return false
  if (by === you || ownTags.has(by)) return true
  // Another tab of this browser, under another name, may have learnt its tag since.
  for (const tag of keptTags()) ownTags.add(tag)
  return ownTags.has(by)
}

/** Draws a message once; `announce`: a new one, which screen readers read out (not history). */
function show(message: HeardMessage, announce = false): void {
  if (shown.has(message.id)) return
  shown.add(message.id)
  const mine = isMine(message)
  view.message(message, mine, announce && !mine)
}

for (const change of ['online', 'offline']) {
  addEventListener(change, () => {
    if (down) showOutage()
  })
}

// Closing the tab (or leaving the page) is leaving the chat: without a goodbye the server would
// keep the session through its recovery window, and the others would see this person "here now"
// for that long. Back from the back/forward cache, the page joins again with a new session.
addEventListener('pagehide', () => socket?.disconnect())
addEventListener('pageshow', (event) => {
  if (event.persisted) socket?.connect()
})

view.onRoom((next) => {
  // The room shown, with no join on its way nor waiting to be asked again (`heading` is set until
  // every join is answered): the server has the socket in it already. A join would only fetch
  // its history again, and count against the few joins of one's own room the server takes.
  if (next === room && drawn === room && heading === undefined) return
  enter(next)
})

/** When the person wrote their last messages (`Limits.rate` of them, and one), newest last. */
const writes: number[] = []

/**
 * Whether the person wrote more than the rate limit takes within its window, up to `at`: then a
 * refusal for it is theirs. Otherwise the window was filled by what waited before (written
 * offline, or held up while the session moved, then sent together), not by their typing.
 */
function typedTooFast(at: number): boolean {
  return writes.filter((time) => time > at - Limits.ratePeriod && time <= at).length > Limits.rate
}

view.onSend((text) => {
  if (!socket) return
  const writtenAt = Date.now()
  writes.push(writtenAt)
  if (writes.length > Limits.rate + 1) writes.shift()
  // Written after a click on another room: for that room, once the page is there.
  const target = heading ?? room
  const offline = !socket.connected
  const writer = socket
  const tick = view.pending(nickname, text, target !== room ? 'held' : offline ? 'queued' : 'sent')
  if (offline && target === room) waiting.add(tick)
  socket.volatile.emit('typing', { room, typing: false })
  const message = { room: target, text, key: randomKey() }
  // `again`: sent from `stalled`, which waits for its answer before it sends the next.
  const deliver = (again = false) => {
    const movesBefore = moves
    request('chat', message, (reply) => {
      waiting.delete(tick)
      const code = reply.ok ? undefined : reply.code
      // The node that had the session handed it on before its handler answered: the handler may
      // have stored it there or not, and the node that has the session now finishes it. Sent
      // again with the same key, it is stored once, and the answer (its id) comes from that node.
      // The same when the node that answered could not reach its store, if the session moved
      // since it was sent: that answer may be the old node's, which may have stored it all the
      // same (its store's answer lost), and the new node has then sent it. Not a wait for the store.
      const movedOn = code === ChatErrorCode.STORE_UNAVAILABLE && moves !== movesBefore
      if (code === Parley.ErrorCode.SESSION_MOVED || movedOn) return deliver(again)
      // The session ended before the answer (the server stopped, or the page said goodbye): the
      // server may have stored it or not. Sent again with the same key in the next session, it is
      // stored once, and the answer says which it is (a history may show it meanwhile, see `delivered`).
      // Unless the page let go of the session's socket (its nickname was refused): that one is done.
      if (code === Parley.ErrorCode.DISCONNECTED && socket === writer) {
        if (!socket.connected) {
          tick.queued()
          waiting.add(tick)
        }
        return deliver(again)
      }
      // The server could not store it, and sent it to no one: it goes again, in its turn (the
      // same key, so that it is stored once whatever happened to an answer).
      if (code === ChatErrorCode.STORE_UNAVAILABLE) {
        tick.stalled()
        storeNotice(true)
        return stalled.wait(() => deliver(true), again)
      }
      // Written offline (or held back by the store), it came in with everything else that
      // waited: the rate limit is not this person typing too fast, so it goes again when the
      // server takes it. So does one written online at a person's pace, refused because such a
      // backlog, gone just before it, filled the window.
      const backlog = offline || again || !typedTooFast(writtenAt)
      if (!reply.ok && backlog && 'retryIn' in reply && reply.retryIn !== undefined) {
        return later(() => deliver(again), reply.retryIn)
      }
      if (again) stalled.next()
      onTheirWay.delete(tick)
      if (!reply.ok) return tick.failed(reply.error)
      storeNotice(false)
      shown.add(reply.id)
      tick.delivered(reply.id, reply.seq)
    })
  }
  // Behind messages that wait for the store, a new one waits too: it must not pass them.
  const send = () => {
    if (!stalled.busy) return deliver()
    tick.stalled()
    stalled.wait(() => deliver(true))
  }
  if (target === room) {
    onTheirWay.set(tick, target)
    send()
  } else
    held.hold({
      room: target,
      send: () => {
        tick.redraw()
        tick.sent()
        onTheirWay.set(tick, target)
        send()
      },
      fail: (reason) => tick.failed(reason),
    })
  // The banner counts it, held for a room clicked meanwhile too: that click waits for the connection.
  if (offline && (down || !everConnected)) showOutage()
})

/** Messages to send again once the rate limit takes them, in the order they were written. */
const again: Array<() => void> = []

/** One timer for them all: each its own could fire out of order (their waits differ by a ms). */
function later(send: () => void, ms: number): void {
  again.push(send)
  if (again.length > 1) return
  setTimeout(() => {
    for (const next of again.splice(0)) next()
  }, ms)
}

view.onTyping(() => {
  if (socket?.connected) socket.volatile.emit('typing', { room, typing: true })
})

function describe(error: Error & { code?: string }): string {
  return error.message.replace(/^the /, '')
}

/** The browser's id, made once and kept in localStorage (a new one per page where that is refused). */
function browserId(): string {
  try {
    const kept = localStorage.getItem('parley-chat-visitor')
    if (kept) return kept
    const made = randomKey()
    localStorage.setItem('parley-chat-visitor', made)
    return made
  } catch {
    return randomKey()
  }
}

/** The most tags kept: a browser that used more names forgets which were its first ones. */
const MOST_TAGS = 50

/** The tags of this browser's nicknames kept in localStorage (none where it is refused or garbled). */
function keptTags(): string[] {
  try {
    const kept: unknown = JSON.parse(localStorage.getItem('parley-chat-tags') ?? '[]')
    return Array.isArray(kept) ? kept.filter((tag): tag is string => typeof tag === 'string') : []
  } catch {
    return []
  }
}

/** Keeps `tag` as this browser's, newest last. */
function keepTag(tag: string): void {
  ownTags.add(tag)
  try {
    const tags = [...keptTags().filter((kept) => kept !== tag), tag].slice(-MOST_TAGS)
    localStorage.setItem('parley-chat-tags', JSON.stringify(tags))
  } catch {
    // Storage refused: this tab still knows the tags it learnt.
  }
}

/** A message's own id, for the server to spot a resend. crypto.randomUUID needs HTTPS; this does not. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
