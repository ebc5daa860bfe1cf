import { CloseReason, type ParleyServer, type ServerSocket } from '@parley/server'
import type { FastifyBaseLogger } from 'fastify'
import { authorOf } from './authors.js'
import { type Burst, BurstLimit } from './burst-limit.js'
import { CoalescedRuns } from './coalesced-runs.js'
import { eventSchemas } from './event-schemas.js'
import { askedNickname, checkedNickname, visitorOf } from './handshake-auth.js'
import { JoinLimits } from './join-limits.js'
import { MessageOrder, type Stall } from './message-order.js'
import { nicknameKey } from './nickname-key.js'
import { Nicknames } from './nicknames.js'
import { tellsNodesChanges } from './nodes-changes.js'
import { RateLimit, type RateWindow } from './rate-limit.js'
import { badRoomName, RoomOpener } from './room-opener.js'
import {
  ChatErrorCode,
  type ChatReply,
  type ClientEvents,
  type JoinReply,
  Limits,
  type Refusal,
  ROOM_PATTERN,
  refusal,
  type ServerEvents,
} from './shared.js'
import { type Added, type ChatStore, type Draft, type Joined, StoreUnavailableError } from './store.js'
import { fitsIn } from './text-length.js'
import { showsSomething } from './visible.js'

/**
 * What the chat keeps on each socket. Plain JSON only: a draining node hands the session, with
 * this, to another node (`restored` there); anything else would not make the trip.
 */
export interface ChatData {
  /** Chosen at the handshake; a resume may change it (see `rename`), by the same rules. */
  nickname: string
  /** The browser's id (`ChatAuth.visitor`): its other sessions may share the nickname. */
  visitor?: string
  /** The socket's rate-limit window for messages (see `RateLimit`). */
  rate: RateWindow
  /** Its window for changes of room (see `JoinLimits`). */
  moves: RateWindow
  /** Its window for joins of the room it is in already (see `JoinLimits`). */
  rejoins: RateWindow
  /** The chat room the socket is in, for presence when it leaves. */
  room?: string
  /**
   * The room of the join under way, until it is done. A node that takes the session over with
   * this set got it as it was before the join was done, and finishes the join (see `setUp`).
   */
  joining?: string
  /**
   * The message being stored, until it is (or is refused). A node that takes the session over
   * with this set got it as it was before the message was stored, and stores it first, with its
   * key (once, see `setUp`). Only a message with a key: without one, a second try is a second message.
   */
  saying?: { room: string; text: string; key: string }
  /** Rooms this session opened (see `RoomOpener`). */
  roomsOpened: number
  /** The message its later ones wait for, refused for want of the store (see `MessageOrder`). */
  stall?: Stall
}

type Chat = ParleyServer<ClientEvents, ServerEvents, ChatData>
type ChatSocket = ServerSocket<ClientEvents, ServerEvents, ChatData>

/**
 * The chat's rules, on top of Parley: nicknames from the handshake's auth, rooms with history
 * and presence, typing indicators, and a rate limit per socket. The page is never trusted:
 * each event's shape is checked by Parley against `eventSchemas` before a handler runs, and
 * what it means is checked here. When the store cannot be reached, joins and messages are
 * refused with STORE_UNAVAILABLE (nothing is sent that the history misses), and the rest
 * (typing, presence) goes on. `clock`: the time this node writes on messages (`at`, ms).
 * `ratePeriod`: the window of the message rate limit, in ms (`Limits.ratePeriod`). Returns what
 * the app runs when it closes: `close` stops listening to changes of the cluster's nodes (see
 * `onNodesChange` below).
 */
export function setUpChat(
  chat: Chat,
  store: ChatStore,
  log?: FastifyBaseLogger,
  clock: () => number = Date.now,
  ratePeriod: number = Limits.ratePeriod,
): { close(): void } {
  chat.schemas(eventSchemas)
  const nicknames = new Nicknames(async (room) =>
    (await chat.in(room).fetchSockets()).map((s) => (s.data as Partial<ChatData>).visitor),
  )

  chat.use(async (socket) => {
    const { auth } = socket.handshake
    if (socket.data.nickname === undefined) {
      const nickname = checkedNickname(auth)
      const visitor = visitorOf(auth)
      await nicknames.claim(nickname, visitor)
      socket.data.nickname = nickname
      if (visitor !== undefined) socket.data.visitor = visitor
    }
    // A resume (or a session another node handed over) asking for the name it has keeps it
    // unchecked: it was taken by the rules of its time (a rolling upgrade may have changed them).
    else if (askedNickname(auth) !== socket.data.nickname) await rename(socket, checkedNickname(auth))
    // A session taken over from a draining node comes with its window (middleware runs again).
    socket.data.rate ??= RateLimit.empty()
    socket.data.moves ??= RateLimit.empty()
    socket.data.rejoins ??= RateLimit.empty()
    socket.data.roomsOpened ??= 0
  })

  /** The room of the name a socket had before `rename`, for a session taken over (see `setUp`). */
  const renamedFrom = new WeakMap<ChatSocket, string>()

  /**
   * A resume whose auth names another nickname than its session has (a client that changed it
   * while the session lived): taken as a first connect takes a name, or refused (NICKNAME_TAKEN)
   * as one would be, the session keeping its name then (Parley leaves a refused resume's session
   * as it was). Claimed for the session's own visitor: a resume does not change whose it is. Once
   * the session has the name, its room is told who is there, so that the others see it.
   */
  async function rename(socket: ChatSocket, nickname: string): Promise<void> {
    const before = Nicknames.roomOf(socket.data.nickname)
    const after = Nicknames.roomOf(nickname)
    // The same name in another letter case or form: the session holds it already.
    if (after !== before) {
      await nicknames.claim(nickname, socket.data.visitor)
      // As at the first connect (see `setUp`): should the adapter fail, the name is only unguarded.
      await Promise.resolve(socket.join(after)).catch(() => {})
      nicknames.opened(nickname)
      await Promise.resolve(socket.leave(before)).catch(() => {})
      // Taken over from another node, the session is not in its rooms yet: they come back after
      // the middleware, the old name's with them, which `setUp` leaves then.
      renamedFrom.set(socket, before)
    }
    const former = socket.data.nickname
    socket.data.nickname = nickname
    const room = socket.data.room
    if (!room) return
    relist.ask(room)
    // Pages clear "is typing" by name after 3 s: one that saw the old name typing would show it
    // typing on beside the new one till then, as if two people were there.
    if (former !== nickname) socket.to(room).volatile.emit('typing', { room, who: former, typing: false })
  }

  const limit = new RateLimit(Limits.rate, ratePeriod)
  const joinLimits = new JoinLimits()
  const order = new MessageOrder(Limits.stallHold)

  /**
   * Who is in a room, by nickname, sorted; one name per person (a browser) even with two tabs,
   * also when the tabs spell it in two letter cases ("Sam", "sam": one name, see `Nicknames`; the
   * first in sort order shows). Those whose room it is: a socket joining it is in it a moment
   * before its join goes through (see `join`), and one whose join fails leaves it without a word
   * to the others.
   */
  async function people(room: string): Promise<string[]> {
    const sockets = await chat.in(room).fetchSockets()
    const inside = sockets.map((s) => s.data as Partial<ChatData>).filter((data) => data.room === room)
    const names = new Map<string, string>()
    for (const name of inside.map((data) => String(data.nickname)).sort()) {
      const person = nicknameKey(name)
      if (!names.has(person)) names.set(person, name)
    }
    return [...names.values()]
  }

  /**
   * Tells a room who is there, with the list's version. The version is taken first: a list made
   * after a change then has a greater version than every list made before that change, so the
   * newest version is the newest list, whichever node made it (see `ChatStore.peopleVersion`).
   * Without the store (Redis away) the list goes without one: the people it finds, rather than nothing.
   */
  async function announce(room: string): Promise<void> {
    const version = await store.peopleVersion(room).catch(logged)
    const update = { room, people: await people(room) }
    chat.to(room).emit('presence', version === undefined ? update : { ...update, version })
  }

  /**
   * `announce`, for the callers that await nothing (a socket that left, a list sent again): a
   * list that could not be made (the adapter's cluster query rejected, or the store failed other
   * than by being away) is logged, once, and the chat goes on. Left unhandled, the rejection
   * would end the process.
   */
  function announceOrWarn(room: string): Promise<void> {
    return announce(room).catch((err: unknown) => unlisted(err, room))
  }

  /** A people list that could not be made: logged, and the chat goes on (see `announceOrWarn`). */
  function unlisted(err: unknown, room: string): void {
    log?.warn({ err, room }, `chat: the people list of a room could not be sent: ${messageOf(err)}`)
  }

  /** Each socket's typing signals passed on lately (see `typingLimit`). */
  const typingPassed = new WeakMap<ChatSocket, Burst>()
  const typingLimit = new BurstLimit(Limits.typingBurst, Limits.typingGap)

  /** The room each socket's last change goes to (it may still be under way). */
  const heading = new WeakMap<ChatSocket, string>()

  /**
   * Puts the socket in `room` (and out of any other chat room). Called only from a socket's
   * joins and messages, which run in turn (see `inTurn`): two changes that overlapped (a person
   * clicking through rooms) would each see the socket still in the room they start from, and
   * leave it in two rooms. Whether every people list the move asked for went out: one that could
   * not be made (the adapter's cluster query rejected) is logged, and the move stands all the same.
   */
  function enter(socket: ChatSocket, room: string): Promise<boolean> {
    heading.set(socket, room)
    return moveTo(socket, room)
  }

  async function moveTo(socket: ChatSocket, room: string): Promise<boolean> {
    // Chat rooms only: not the socket's own room (its id), nor a nickname's (with a colon).
    const left = [...socket.rooms].filter((r) => r !== room && r !== socket.id && ROOM_PATTERN.test(r))
    const arrived = socket.data.room !== room || !socket.rooms.has(room)
    if (!arrived && left.length === 0) return true
    for (const r of left) await socket.leave(r)
    await socket.join(room)
    socket.data.room = room
    const told = await Promise.all(
      [...left, ...(arrived ? [room] : [])].map((r) =>
        announce(r).then(
          () => true,
          (err: unknown) => {
            unlisted(err, r)
            return false
          },
        ),
      ),
    )
    return told.every(Boolean)
  }

  /**
   * The rooms someone is in (those waiting in their recovery window included), on every node,
   * and those this node's sessions are on their way to: they keep their place and history when
   * a new room needs one. The store may be shared by several nodes, so the others count too.
   */
  async function roomsInUse(): Promise<Set<string>> {
    const rooms = new Set<string>()
    for (const socket of chat.sockets.values()) {
      if (socket.data.room) rooms.add(socket.data.room)
      const next = heading.get(socket)
      if (next) rooms.add(next)
    }
    let everywhere: Awaited<ReturnType<Chat['fetchSockets']>>
    try {
      everywhere = await chat.fetchSockets()
    } catch (error) {
      // Not knowing, a room someone is in could be forgotten: none is.
      throw new StoreUnavailableError('cannot tell which rooms are in use', { cause: error })
    }
    for (const socket of everywhere) {
      const room = (socket.data as Partial<ChatData>).room
      if (room) rooms.add(room)
    }
    return rooms
  }

  /** Sends every page the store's rooms list, with its version. */
  function sendRooms(): void {
    store.rooms().then(
      (list) => chat.emit('rooms', list.rooms, list.version),
      // A store may reject with anything (null, a string): read as an Error, this handler would
      // throw in turn, and the rejection, unhandled, end the process.
      (error: unknown) =>
        log?.warn(`chat: the rooms list changed, and could not be sent: ${messageOf(error)}`),
    )
  }

  const rooms = new RoomOpener(store, roomsInUse, sendRooms)

  /** Each socket's last join or message: the next one waits for it (see `inTurn`). */
  const turns = new WeakMap<ChatSocket, Promise<unknown>>()

  /**
   * Runs a socket's joins and messages one at a time, in the order they came: each one waits
   * for the store (on Redis, for its answers), and without turns a message could be stored
   * after a later one, or a join answer with a history that misses a message sent before it.
   */
  function inTurn(socket: ChatSocket, work: () => Promise<void>): Promise<void> {
    const run = (turns.get(socket) ?? Promise.resolve()).then(work)
    turns.set(
      socket,
      run.catch(() => {}),
    )
    return run
  }

  /**
   * A join or message taken over from another node failed here for a reason other than the store
   * being away: no handler awaits it, so nothing else would tell anyone.
   */
  function failedHere(what: 'join' | 'message', socket: ChatSocket) {
    return (err: unknown) =>
      log?.error({ err, socket: socket.id }, `chat: a ${what} taken over from another node failed`)
  }

  /** A store call's failure, logged: the chat goes on without what it would have given. */
  function logged(error: unknown): undefined {
    if (!(error instanceof StoreUnavailableError)) throw error
    // The line's words written out, as the README's table of log lines quotes them: the same as
    // the error's message.
    log?.warn(`chat: the chat's store cannot be reached (${error.why})`)
    return undefined
  }

  /** The reply to a request that needs the store, when it cannot be reached. */
  function unavailable(error: unknown): Refusal {
    logged(error)
    return refusal(
      ChatErrorCode.STORE_UNAVAILABLE,
      'the chat cannot reach its rooms and history just now: try again in a moment',
    )
  }

  /**
   * A socket's handlers: for a new session (`connection`) and for one another node handed over
   * while it drained (`restored`, with its data and rooms), which never fires `connection` here.
   */
  function setUp(socket: ChatSocket): void {
    // Holds the name for as long as the session lives (a handed-over one is in it already). Should
    // a cluster's adapter fail to record it, the name is only unguarded: the chat goes on.
    const name = socket.data.nickname
    void Promise.resolve(socket.join(Nicknames.roomOf(name)))
      .catch(() => {})
      .then(() => nicknames.opened(name))
    // A session taken over under another name (see `rename`) was put back in its old name's room
    // after its middleware had left it: it holds that name no longer. (In turn after that join.)
    const former = renamedFrom.get(socket)
    if (former !== undefined && former !== Nicknames.roomOf(name))
      void Promise.resolve(socket.leave(former)).catch(() => {})

    socket.on('join', (request, callback) => inTurn(socket, () => join(request.room, replyWith(callback))))

    // Taken over from a node that drained (or moved the session) while a join was under way: the
    // snapshot was made before the join was done, while the page may have had its answer from
    // that node already. Finished here, by the same rules, before anything else of the socket's,
    // so that this node lists the person where the page is, at once. (The page's own second join,
    // see the README, then most often changes nothing.)
    const unfinished = socket.data.joining
    if (unfinished !== undefined)
      inTurn(socket, async () => void (await go(unfinished))).catch(failedHere('join', socket))
    // The same for a message being stored: what the page sent after it reaches this node with the
    // resume, and would be stored first, while the old node (or the page, told the session moved)
    // stores this one only later. Stored here first; the old node's try and the page's resend, with
    // the same key, find it stored and send it to nobody again. So a request the old node answered
    // PARLEY_SESSION_MOVED is done all the same, here; asked again, it answers with what was done.
    const unsaid = socket.data.saying
    if (unsaid !== undefined) inTurn(socket, () => resay(unsaid)).catch(failedHere('message', socket))

    /**
     * Stores a message taken over from another node (see above) and finishes what the old node may
     * not have: found stored there already, it is sent to the room again (the old node may have
     * stopped, or lost its store's answer, before it sent it), marked `resent` (see the `chat`
     * event): those who had it from the old node drop it by its id. Once taken, the socket goes
     * into its room (the old node may have been on its way there when the session moved: a message
     * written offline reaches the server before the page joined its room again, see `keep`),
     * which a resend found stored is answered without.
     */
    async function resay(message: { room: string; text: string; key: string }): Promise<void> {
      let taken = false
      let twin: string | undefined
      const reply = (answer: ChatReply) => {
        taken = answer.ok
      }
      await say(message, reply, (id) => {
        twin = id
      })
      if (twin !== undefined) await sendAgain(message.room, twin)
      if (taken) await enter(socket, message.room)
    }

    /**
     * Sends the room the message stored under `id` as the store holds it (its time and place), as
     * a copy. One that has left the history (a hundred messages later) is old news: none is sent,
     * and none either while the store cannot be reached.
     */
    async function sendAgain(room: string, id: string): Promise<void> {
      const history = await store.history(room).catch(logged)
      const stored = history?.find((m) => m.id === id)
      if (stored) socket.to(room).emit('chat', { ...stored, resent: true })
    }

    async function join(asked: string, ack: (reply: JoinReply) => void): Promise<void> {
      const room = asked.trim().toLowerCase()
      // A change of room and a join of the room the socket is in have limits of their own.
      const change = room !== (heading.get(socket) ?? socket.data.room)
      const tooMany = joinLimits.take(socket.data, change)
      if (tooMany) return ack(tooMany)
      const joined = await go(room)
      if ('ok' in joined) {
        // Nobody was told anything, and the page asks again every 2 s until the store is back.
        if (joined.code === ChatErrorCode.STORE_UNAVAILABLE) joinLimits.giveBack(socket.data, change)
        return ack(joined)
      }
      const { history, list, peopleVersion } = joined.joined
      // Made after the store's join gave its version, like any list (see `announce`). The socket
      // is in the room by now: a list that cannot be made (the adapter's cluster query rejected)
      // does not undo the join, which answers with the history and the person's own name, flagged
      // so that the page says the list is unavailable. Logged once: not again when the room's own
      // list failed a moment before.
      const listed = await people(room).catch((err: unknown) => {
        if (joined.told) unlisted(err, room)
        return undefined
      })
      ack({
        ok: true,
        room,
        history,
        ...(listed === undefined
          ? { people: [socket.data.nickname], peopleUnavailable: true }
          : { people: listed }),
        peopleVersion,
        rooms: list.rooms,
        roomsVersion: list.version,
        // Which messages are this browser's: told here, since the page cannot hash in every
        // browser (crypto.subtle needs HTTPS, and the demo is often opened over plain HTTP).
        ...(socket.data.visitor === undefined
          ? {}
          : { you: authorOf(socket.data.visitor, socket.data.nickname) }),
      })
    }

    /**
     * Takes the socket into `room` (see `join`); its history and the rooms list, and whether the
     * people lists the move asked for went out (see `enter`); or why it cannot.
     * `socket.data.joining` says where to until it is done, for a node that takes the session over.
     */
    async function go(room: string): Promise<{ joined: Joined; told: boolean } | Refusal> {
      socket.data.joining = room
      try {
        const joined = await admit(room)
        if ('ok' in joined) return joined
        return { joined, told: await enter(socket, room) }
      } finally {
        // Done, either way: a move from here on carries the socket's room as it is.
        delete socket.data.joining
      }
    }

    /** The room's history and the rooms list, the socket in the room; or why it cannot be. */
    async function admit(room: string): Promise<Joined | Refusal> {
      // The socket is in the room before its history is read: a message stored after the read
      // reaches it as it is sent, one stored before is in the history (and may reach it as well:
      // the page shows each id once). Read first, a message stored between the read and the
      // socket's arrival would be in neither. A join that fails takes it out again, unless it is
      // the socket's room (a socket taken over from another node may be in it only because the
      // join there put it in, before the snapshot).
      const read = async (): Promise<Joined | undefined> => {
        await socket.join(room)
        return store.join(room)
      }
      const back = async (): Promise<void> => {
        if (ROOM_PATTERN.test(room) && socket.data.room !== room) await socket.leave(room)
      }
      try {
        // A room that is there (the usual case) is one step of the store: its use, its history
        // and the rooms list. A new one is opened first, within the limits (a name that is not a
        // room name is refused there, before it reaches the store or the socket joins it).
        const there = ROOM_PATTERN.test(room) ? await read() : undefined
        if (there) return there
        await back()
        const refused = await rooms.open(room, socket.data)
        if (refused) return refused
        const joined = await read()
        // Forgotten again, by another node making way for a new room, between the two steps.
        if (!joined) throw new StoreUnavailableError('the room was forgotten meanwhile')
        return joined
      } catch (error) {
        await back()
        return unavailable(error)
      }
    }

    // In turn with the socket's joins (see `inTurn`): a `join` that follows messages answers
    // with all of them.
    socket.on('chat', (message, callback) => inTurn(socket, () => say(message, replyWith(callback))))

    /** `found`: given the message's id when it was stored already (a resend), before its answer. */
    async function say(
      message: { room: string; text: string; key?: string },
      ack: (reply: ChatReply) => void,
      found: (id: string) => void = () => {},
    ): Promise<void> {
      const { room, key } = message
      // Before anything else: a name that is no room's (the page never sends one) is refused as
      // such, also past the rate limit or while the store is away, and never reaches the store,
      // nor holds the socket's later messages back as one the store refused would.
      const bad = badRoomName(room)
      if (bad) return ack(bad)
      const text = message.text.trim()
      // Counted as people count (an emoji is one), as the page counts before sending.
      if (text === '' || !fitsIn(text, Limits.message)) {
        return ack(refusal(ChatErrorCode.BAD_MESSAGE, `messages are 1 to ${Limits.message} characters`))
      }
      // Trimmed, zero-width and bidi control characters are left: alone, they would show as a
      // blank line nobody can read, refused as an empty message is (the nickname rule's check).
      if (!showsSomething(text)) {
        return ack(
          refusal(
            ChatErrorCode.BAD_MESSAGE,
            'write a message that shows: zero-width and bidi control characters alone show nothing',
          ),
        )
      }
      // Sent before the answer to one the store could not take: it goes after that one.
      if (order.waits(socket.data, key)) {
        return ack(
          refusal(
            ChatErrorCode.STORE_UNAVAILABLE,
            'the chat could not store your message before this one: this one goes after it',
          ),
        )
      }
      const { nickname: from, visitor } = socket.data
      const draft: Draft = {
        room,
        from,
        ...(visitor === undefined ? {} : { by: authorOf(visitor, from) }),
        text,
        at: clock(),
      }
      // Past the rate limit nothing is stored; but a resend of a message stored already (its
      // answer was lost) is not a new one, and gets the first one's id.
      if (limit.retryIn(socket.data.rate) > 0) {
        const twin = key === undefined ? undefined : await store.find(room, draft.from, key).catch(logged)
        if (twin !== undefined) {
          found(twin.id)
          return ack({ ok: true, ...twin })
        }
        const retryIn = limit.retryIn(socket.data.rate)
        return ack({
          ...refusal(
            ChatErrorCode.TOO_MANY_MESSAGES,
            `slow down: at most ${Limits.rate} messages in ${ratePeriod / 1000} s (wait ${Math.ceil(retryIn / 1000)} s)`,
          ),
          retryIn,
        })
      }
      // For a node that takes the session over before it is stored (see `ChatData.saying`).
      if (key !== undefined) socket.data.saying = { room, text, key }
      try {
        await keep(draft, key, ack, found)
      } finally {
        delete socket.data.saying
      }
    }

    /** Stores a message the rules let through, and sends it to the room (see `say`). */
    async function keep(
      draft: Draft,
      key: string | undefined,
      ack: (reply: ChatReply) => void,
      found: (id: string) => void,
    ): Promise<void> {
      const { room } = draft
      // A message goes out only once it is stored: one the store cannot take (Redis away) is
      // refused with STORE_UNAVAILABLE, and the page sends it again, in order, once it can. Sent
      // unstored it would miss the history, and a resend could not be told from a new message.
      let added: Added
      try {
        added = await store.add(draft, key)
        // A message queued while offline may reach a restarted server that forgot a room the
        // page had created: open it again rather than lose the message. Only for a message that
        // is taken: a refused one must not open rooms (of which there are at most Limits.rooms).
        if ('noRoom' in added) {
          const refused = await rooms.open(room, socket.data)
          if (refused) return ack(refused)
          added = await store.add(draft, key)
        }
      } catch (error) {
        order.refused(socket.data, key)
        return ack(unavailable(error))
      }
      // After a server restart the client sends again what the old server never acknowledged
      // (at least once): the page's key keeps such a message from being stored or shown twice.
      if ('twin' in added) {
        found(added.twin.id)
        return ack({ ok: true, ...added.twin })
      }
      // Forgotten again, by another node making way for a new room, between the two steps.
      if ('noRoom' in added) {
        order.refused(socket.data, key)
        return ack(unavailable(new StoreUnavailableError('the room was forgotten meanwhile')))
      }
      limit.take(socket.data.rate)
      const out = added.stored
      socket.to(room).emit('chat', out)
      // With its place: the page puts its own message where everyone else's page puts it.
      ack({ ok: true, id: out.id, seq: out.seq })
      // A message queued while offline may arrive before the page joined its room again.
      if (!socket.rooms.has(room)) await enter(socket, room)
    }

    socket.on('typing', (state) => {
      const { room } = state
      // The chat's room, not Parley's: a join puts the socket in Parley's room before the store
      // answers (see `admit`), and the join may yet be refused.
      if (socket.data.room !== room) return
      // Each signal goes to everyone in the room: a client that sent thousands would have the
      // server send thousands times as many. The page's own are far apart, but for a run of
      // three: "typing", "stopped" on sending, "typing" at the next key. A least gap between two
      // signals dropped that last one, and the others saw nothing until the page's next signal
      // a second later; a burst lets the run through, and past it the extras are dropped.
      const passed = typingPassed.get(socket) ?? BurstLimit.empty()
      typingPassed.set(socket, passed)
      if (!typingLimit.take(passed)) return
      socket.to(room).volatile.emit('typing', { room, who: socket.data.nickname, typing: state.typing })
    })

    socket.on('disconnect', (reason) => {
      // Handed off: the person is still here, on another node; announcing now could list the
      // room without them (fetchSockets may catch the moment between the two nodes). The node
      // that takes the session over announces instead; should nobody claim it (its page vanished
      // just before the drain), the nodes that stay announce once this one has left the cluster
      // (see `onNodesChange` below), whether it closed after its drain or died in the middle of it.
      if (reason === CloseReason.SERVER_HANDOFF) return
      if (socket.data.room) void announceOrWarn(socket.data.room)
    })
  }

  /**
   * Tells a room who is there again once a session in it was taken over here. A list sent while
   * the session was between nodes (claimed here, its rooms not joined yet; or stored by a node
   * that drained and went, its client not back yet) has it on neither node, as `fetchSockets`
   * finds them; nothing else would send the room a list with it again. A drain brings many
   * sessions of a room at once: their takeovers share a list or two (see `CoalescedRuns`), not
   * one each. The lists sent again when the cluster's nodes change (below) share them too.
   */
  const relist = new CoalescedRuns(announceOrWarn)

  chat.on('connection', setUp).on('restored', (socket) => {
    setUp(socket)
    // After what the takeover finishes (see `setUp`): a join it finishes may change the room.
    void inTurn(socket, async () => {
      if (socket.data.room) relist.ask(socket.data.room)
    })
  })

  /**
   * Tells the rooms of this node's people who is there again when a node left the cluster or came
   * (a node that died, drained or not, announces nothing: see the README, "Presence across
   * nodes"): each node that stays does so for its own people's rooms, so every room with someone
   * left in it gets a list. The adapter says so once per change, as its heartbeat or a node's word
   * shows it. Not while this node drains or closes: its sessions are on their way to other nodes,
   * and a list made then could miss them. Any adapter that can tell of such changes will do (see
   * `tellsNodesChanges`); the in-memory one of a lone node has none to tell.
   */
  const adapter = chat.adapter
  const stop = tellsNodesChanges(adapter)
    ? adapter.onNodesChange(() => {
        if (chat.closing) return
        // Once a room: asked again while its run is under way, it would run twice.
        const rooms = new Set([...chat.sockets.values()].map((socket) => socket.data.room))
        for (const room of rooms) if (room) relist.ask(room)
      })
    : undefined

  return { close: () => stop?.() }
}

/**
 * The client's reply callback. A client that is not the page may send an event without one
 * (`emit` with no callback): it wants no reply, and gets none; the event is handled all the same.
 */
function replyWith<T>(callback: ((reply: T) => void) | undefined): (reply: T) => void {
  return typeof callback === 'function' ? callback : () => {}
}

/** What a failure says, for a log line; never throws, whatever was thrown. */
function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error)
  } catch {
    return 'a value that cannot be shown'
  }
}
