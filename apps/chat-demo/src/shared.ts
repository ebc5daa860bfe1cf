/** What the chat's server and page say to each other; typed on both ends. */

export interface ChatMessage {
  /** Unique per server run; lets a page drop a message it already shows. */
  id: string
  room: string
  from: string
  text: string
  /** Server time, ms since the epoch. */
  at: number
}

/**
 * The answer to a message: delivered, or refused with a reason a person can read. `retryIn`:
 * refused by the rate limit, which takes it again in that many ms.
 */
export type ChatReply = { ok: true; id: string } | { ok: false; error: string; retryIn?: number }

/** The answer to joining a room: what the page needs to draw it. */
export type JoinReply =
  | { ok: true; room: string; history: ChatMessage[]; people: string[]; rooms: string[] }
  | { ok: false; error: string }

/** Events the page sends. */
export interface ClientEvents {
  join: (request: { room: string }, ack: (reply: JoinReply) => void) => void
  /** `key`: the page's own id for the message (up to 64 characters), so a resend is not stored twice. */
  chat: (message: { room: string; text: string; key?: string }, ack: (reply: ChatReply) => void) => void
  typing: (state: { room: string; typing: boolean }) => void
}

/** Events the server sends. */
export interface ServerEvents {
  chat: (message: ChatMessage) => void
  presence: (update: { room: string; people: string[] }) => void
  typing: (state: { room: string; who: string; typing: boolean }) => void
  rooms: (rooms: string[]) => void
}

/** Limits the server enforces (the page's maxlength attributes match them). */
export const Limits = {
  nickname: 24,
  message: 500,
  roomName: 32,
  rooms: 50,
  history: 100,
  /** Messages a socket may send per `ratePeriod` ms. */
  rate: 5,
  ratePeriod: 5000,
  /** Changes of room a socket may make per `roomPeriod` ms (each tells two rooms who is there). */
  roomChanges: 10,
  roomPeriod: 10_000,
  /** Least ms between two typing signals of one socket that the server passes on (the page sends one a second). */
  typingGap: 250,
} as const

export const DEFAULT_ROOMS = ['lobby', 'random', 'help'] as const

/** Room names: lower-case letters, digits and dashes, so they read well and need no escaping. */
export const ROOM_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/
