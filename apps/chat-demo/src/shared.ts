/** What the chat's server and page say to each other; typed on both ends. */

export interface ChatMessage {
  /**
   * Unique across processes and nodes; lets a page drop a message it already shows. A message sent
   * with a `key` has one made from its room, sender and key (SHA-256): a resend keeps it even
   * when the server forgot the first (restarted, in memory).
   */
  id: string
  room: string
  /** The sender's nickname, for people to read: not who owns the message (see `by`). */
  from: string
  /**
   * The sender's browser, as a tag (a hash of its `ChatAuth.visitor`, which stays secret): a page
   * shows a message as its own when this is the `you` of its join's answer, whatever the nickname
   * (someone may use a name another browser used before). None for a sender without a visitor id,
   * nor for a message stored by an older version of the chat: nobody's own.
   */
  by?: string
  text: string
  /**
   * Server time, ms since the epoch: when the message was written, by the clock of the node that
   * took it. For people to read, not for order: two nodes' clocks may be apart.
   */
  at: number
  /**
   * Its place in its room, given by the store as it stored the message: greater than that of
   * every message stored in the room before it, through any node. A room's messages go in this
   * order (the history's), whichever order they arrive in: two nodes' broadcasts may cross. One
   * stored by an older version of the chat, before messages had places, has the place of the
   * message stored before it (0 for the first): it stays where it was stored.
   */
  seq: number
}

/**
 * A message as a page may hear it: one that a node of an older version of the chat sends (a
 * rolling upgrade), live or in a join's history, has no place; the page gives it one (see
 * `page/places.ts`).
 */
export type HeardMessage = Omit<ChatMessage, 'seq'> & { seq?: number }

/**
 * Why the server refused something: one stable code per reason, for code that must tell them
 * apart (the `error` beside it is for people, and may be reworded).
 */
export const ChatErrorCode = {
  /**
   * The handshake's nickname is missing, too long, or shows nothing: spaces, zero-width or bidi
   * control characters alone; or it holds a bidi embedding, override or isolate, which can make
   * it show as another name (the connection is refused, or a resume whose auth asks for it: the
   * session keeps its name).
   */
  BAD_NICKNAME: 'BAD_NICKNAME',
  /**
   * Someone else (another browser) uses this nickname, in some letter case or drawn the same
   * (see `nicknameKey`) (the connection is
   * refused, or a resume whose auth asks for it: the session keeps its name).
   */
  NICKNAME_TAKEN: 'NICKNAME_TAKEN',
  /** Not a room name (see `ROOM_PATTERN`). */
  BAD_ROOM_NAME: 'BAD_ROOM_NAME',
  /**
   * A message that is empty, longer than `Limits.message`, or shows nothing: zero-width or bidi
   * control characters alone.
   */
  BAD_MESSAGE: 'BAD_MESSAGE',
  /** More than `Limits.rate` messages in `Limits.ratePeriod`; the refusal says when to retry. */
  TOO_MANY_MESSAGES: 'TOO_MANY_MESSAGES',
  /**
   * More than `Limits.roomChanges` changes of room in `Limits.roomPeriod`, or more than
   * `Limits.rejoins` joins of the room the socket is in already.
   */
  TOO_MANY_ROOM_CHANGES: 'TOO_MANY_ROOM_CHANGES',
  /** There are `Limits.rooms` rooms already, and someone is in each one that could be closed. */
  ROOMS_FULL: 'ROOMS_FULL',
  /** This session opened `Limits.roomsPerSession` rooms already. */
  TOO_MANY_ROOMS_OPENED: 'TOO_MANY_ROOMS_OPENED',
  /**
   * The rooms list and history cannot be reached just now (a cluster whose Redis is away): a
   * room cannot be opened or joined, and a message is not taken (it would miss the history, and a
   * resend could not be recognised). Nothing was stored or sent: send it again in a moment; the
   * page does so by itself, in order. A message sent after one so refused (with a `key`) is
   * refused the same way until that one is sent again, so that it cannot be stored before it
   * (`Limits.stallHold`).
   */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
} as const
export type ChatErrorCode = (typeof ChatErrorCode)[keyof typeof ChatErrorCode]

/** A request the server refused: a stable `code`, and an `error` a person can read. */
export interface Refusal {
  ok: false
  code: ChatErrorCode
  error: string
}

/** A refusal, as the server sends it. */
export function refusal(code: ChatErrorCode, error: string): Refusal {
  return { ok: false, code, error }
}

/**
 * The answer to a message: delivered, or refused. Delivered: its `id` and its place in the room
 * (`seq`, see `ChatMessage`), also for a resend found stored; the page moves its own message
 * there, so that it shows where everyone else's page shows it (two people writing at once have
 * their messages stored in one order, which neither page knows until it hears). No `seq` only for
 * a resend of a message that has left the history since (a hundred messages later; on Redis): the
 * page leaves that one where it was written. `retryIn`: refused by the rate limit, which takes it again in that
 * many ms.
 */
export type ChatReply = { ok: true; id: string; seq?: number } | (Refusal & { retryIn?: number })

/** The answer to joining a room: what the page needs to draw it. */
export type JoinReply =
  | {
      ok: true
      room: string
      history: HeardMessage[]
      people: string[]
      rooms: string[]
      /** The version of `rooms` (see the `rooms` event). */
      roomsVersion: number
      /** The version of `people` (see the `presence` event). */
      peopleVersion: number
      /**
       * The server could not make the room's people list (its adapter's cluster query failed):
       * `people` holds this person alone, and the page says the list is unavailable until the
       * room's next `presence`.
       */
      peopleUnavailable?: true
      /** The `by` of this browser's messages: those are its own. None for a session without a visitor id. */
      you?: string
    }
  | Refusal

/** What the page sends in its handshake. */
export interface ChatAuth {
  nickname: string
  /**
   * The browser's own random id (16 to 64 letters, digits, `-` or `_`), kept in localStorage: the
   * tabs of one browser are one person, who may use one nickname in all of them.
   */
  visitor?: string
}

/**
 * Events the page sends. A join or message answered PARLEY_SESSION_MOVED (the session moved to
 * another node while it was under way) is finished by that node all the same: asked again (a
 * message with the same `key`), it answers with what was done, not a second join or message.
 */
export interface ClientEvents {
  join: (request: { room: string }, ack: (reply: JoinReply) => void) => void
  /** `key`: the page's own id for the message (up to 64 characters), so a resend is not stored twice. */
  chat: (message: { room: string; text: string; key?: string }, ack: (reply: ChatReply) => void) => void
  typing: (state: { room: string; typing: boolean }) => void
}

/** Events the server sends. */
export interface ServerEvents {
  /**
   * A message stored in a room the socket is in. `resent`: a second copy, which the socket may
   * have had already under the same id (drop it then): its sender's session moved to another
   * node while it was being stored, and that node, finding it stored, cannot tell whether the
   * old one sent it (see the README). Any other message comes once.
   */
  chat: (message: HeardMessage & { resent?: true }) => void
  /**
   * Who is in `room` now. `version` grows with each list of the room, across the nodes: a page
   * keeps the list of the highest version it heard (lists sent by two nodes, and a join's answer,
   * may cross on their way). None while the server cannot reach its store: the page takes that
   * list as it comes.
   */
  presence: (update: { room: string; people: string[]; version?: number }) => void
  typing: (state: { room: string; who: string; typing: boolean }) => void
  /**
   * The rooms list changed. `version` grows with each change: a page keeps the list of the
   * highest version it heard (in a cluster, lists sent by two nodes may cross on their way).
   */
  rooms: (rooms: string[], version: number) => void
}

/**
 * Limits the server enforces. The page's inputs have no maxlength: the browser would cut what is
 * pasted past it without a word. Too long a name or room name is refused by the server, which says
 * why; too long a message the page keeps in its input and says so, before sending. Lengths are in
 * characters as people count them (an emoji, a flag or an accented letter is one): both ends
 * count with `fitsIn` (`text-length.ts`).
 */
export const Limits = {
  nickname: 24,
  message: 500,
  roomName: 32,
  /**
   * Rooms at most, the default ones included. When there are that many, a new one takes the place
   * of the room used longest ago that nobody is in (which is forgotten, history and all).
   */
  rooms: 50,
  /** Rooms one session may open, so that one person cannot take the places of everyone's. */
  roomsPerSession: 5,
  history: 100,
  /**
   * How long the server remembers the key of a stored message once the message has left its
   * room's history, in ms from when it was stored: a resend of it within this time (a page whose
   * connection dropped before the server's answer) is answered with the first one's id, never
   * stored twice, however many messages came since. While the message is in the history its key
   * is remembered however long ago it was stored (a laptop that slept with it unacknowledged).
   */
  resendWindow: 3_600_000,
  /**
   * After a socket's message is refused with STORE_UNAVAILABLE, how long (ms) its later messages
   * are refused too unless that one comes again first (the page sends it again within 2 s): so
   * that they are stored in the order they were sent. Longer than the recovery window (30 s), for
   * a message that reaches the server only when a lost connection resumes.
   */
  stallHold: 60_000,
  /** Messages a socket may send per `ratePeriod` ms. */
  rate: 5,
  ratePeriod: 5000,
  /** Changes of room a socket may make per `roomPeriod` ms (each tells two rooms who is there). */
  roomChanges: 10,
  roomPeriod: 10_000,
  /**
   * Joins of the room a socket is in already that it may make per `roomPeriod` ms, apart from its
   * changes: each costs the server as much as a change (see `JoinLimits`), and the page makes one
   * only when its session moved during a join, or when the person clicks the room they are in.
   */
  rejoins: 5,
  /**
   * Typing signals of one socket that the server passes on: up to `typingBurst` at once (a
   * start, the stop of sending, the next start), then one per `typingGap` ms (the page sends
   * one a second).
   */
  typingBurst: 3,
  typingGap: 250,
} as const

export const DEFAULT_ROOMS = ['lobby', 'random', 'help'] as const

/** Room names: lower-case letters, digits and dashes, so they read well and need no escaping. */
export const ROOM_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/
