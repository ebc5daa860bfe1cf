import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { ChatErrorCode, type ChatMessage, DEFAULT_ROOMS, Limits } from './shared.js'

/** How much a store keeps; the chat's `Limits` unless a test asks for less. */
export interface ChatStoreOptions {
  /** Messages kept per room (`Limits.history`). */
  history?: number
  /** Rooms at most, the default ones included (`Limits.rooms`). */
  rooms?: number
  /**
   * How long a message's key is remembered after the message was stored, in ms, also once the
   * message has left the history (`Limits.resendWindow`).
   */
  resendWindow?: number
}

/**
 * What `add` did. A resend (the same sender and key as a message still in the room's history, or
 * stored less than `Limits.resendWindow` ago) is not stored again: `twin` is where the first is.
 * A room that is not there (never made, or forgotten meanwhile) stores nothing.
 */
export type Added = { stored: ChatMessage } | { twin: Found } | { noRoom: true }

/**
 * A message a resend names, as stored: its id and its place (`ChatMessage.seq`), so that the
 * sender's page puts it where everyone else's does. No place for one that has left the history
 * (a hundred messages later) on Redis, which keeps only its id past the history (`MemoryStore`
 * keeps the place too).
 */
export interface Found {
  id: string
  seq?: number
}

/** A message as a node hands it to the store: the store gives it its id and its place (`seq`). */
export type Draft = Omit<ChatMessage, 'id' | 'seq'>

/**
 * The rooms list as the pages get it. `version` grows with every change of the list (it is
 * never less than the time of the change, in microseconds, see `versionClock`, so it keeps
 * growing across a restart): a page that hears two lists keeps the newer one, whichever node
 * sent it and in whichever order.
 */
export interface RoomList {
  rooms: string[]
  version: number
}

/**
 * What a join gets from the store: the room's last messages (oldest first), the rooms list, and
 * a version for the people list the join's answer carries (see `ChatStore.peopleVersion`).
 */
export interface Joined {
  history: ChatMessage[]
  list: RoomList
  peopleVersion: number
}

/**
 * What the chat keeps: its rooms, the last messages of each (oldest first) and when each room
 * was last used. Every method may reject (a store on Redis that cannot be reached): the chat
 * then refuses what needs the store with `STORE_UNAVAILABLE`, and goes on with the rest.
 *
 * - `MemoryStore`: in this process; a new process starts empty. The single-process demo's.
 * - `RedisStore` (`src/redis-store.ts`): shared by every node on one Redis, and kept while
 *   nodes restart.
 */
export interface ChatStore {
  /** The rooms, the default ones first, then in the order they were made. */
  rooms(): Promise<RoomList>
  hasRoom(room: string): Promise<boolean>
  /** Adds a room (true when it is there, new or not); false when there are too many rooms. */
  addRoom(room: string): Promise<boolean>
  /** Forgets a room and its history; false for the default rooms, which always stay. */
  removeRoom(room: string): Promise<boolean>
  /**
   * Notes that someone joined `room` (a use, see `quietest`) and gives its history and the rooms
   * list, as one step: the history is the room's at the moment of the join, and on Redis it is
   * one round trip. Undefined when the room is not there (never made, or forgotten meanwhile).
   */
  join(room: string): Promise<Joined | undefined>
  /**
   * A version for a people list of `room` about to be made: greater than any given for that room
   * before, by any node, and never less than the time in microseconds (`versionClock`), so it
   * keeps growing across a restart that forgot the last one. Asked before the list is made
   * (`fetchSockets`): then a list with a greater version began later, and has every change whose
   * own list began before it. A page keeps the list of the greatest version it heard, whichever
   * node sent it and in whichever order.
   */
  peopleVersion(room: string): Promise<number>
  /** The rooms that may be closed (not the default ones), the one used longest ago first. */
  quietest(): Promise<string[]>
  /**
   * Stores a message under a new id (unique across stores and nodes: a page remembers the ids it
   * shows; for a message with a key, `keyedMessageId`, so that a resend a store no longer
   * recognises keeps its id all the same) and at its place in the room (`ChatMessage.seq`,
   * after every message stored there before, through any node), and forgets the oldest of its
   * room past the history size; unless `draft.from` stored one under the same `key` (the
   * sender's own name for the message) that is still in the history or was stored within the
   * resend window, or the room is not there (see `Added`). One step: two nodes given the same resend at once store it once.
   */
  add(draft: Draft, key?: string): Promise<Added>
  /**
   * The message `from` stored in `room` under `key`, if it is still in the history or was stored
   * within the resend window.
   */
  find(room: string, from: string, key: string): Promise<Found | undefined>
  /** The room's last messages, oldest first. */
  history(room: string): Promise<ChatMessage[]>
}

/**
 * The store could not be asked, or did not answer in time (Redis away, stopped or cut off). The
 * chat refuses what needs the store with `ChatErrorCode.STORE_UNAVAILABLE`. `cause` is the
 * store's own error, when there is one.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  readonly code = ChatErrorCode.STORE_UNAVAILABLE

  /** What went wrong, in a few words (`not connected`); the message says it after its own. */
  readonly why: string

  constructor(why: string, options?: { cause?: unknown }) {
    super(`the chat's store cannot be reached (${why})`, options)
    this.why = why
  }
}

/**
 * The clock of versions and places (`ChatStore.peopleVersion`, `ChatMessage.seq`): microseconds
 * since the epoch. Each is one more than the last, and never less than this clock, so that one
 * given after the store forgot the last (a new process, Redis that lost its data) still comes
 * after it. In microseconds rather than ms, a count runs ahead of the clock only with more than
 * one a microsecond, which no store gives: so none forgotten is ever given again.
 */
export function versionClock(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000)
}

/** The next version or place after `last` (see `versionClock`). */
export function nextVersion(last: number): number {
  return Math.max(last + 1, versionClock())
}

/** A message as a store keeps it in a room's history. */
export interface Stored {
  message: ChatMessage
  /**
   * The name its sender's key is remembered under (`keyOf`), when it came with one: a resend is
   * recognised for as long as the message is in the history, however long ago it was stored.
   */
  sent?: string
}

/** The name a sender's key is remembered under: room, sender and key, none able to pass for another. */
export function keyOf(room: string, from: string, key: string): string {
  return JSON.stringify([room, from, key])
}

/**
 * The id of a message sent with a key: a SHA-256 of its room, sender and key (`keyOf`), so the
 * same on every node and in every process. A store that forgot the first copy (`pnpm demo`
 * restarted between storing a message and its answer: the page sends it again) stores the resend
 * under the id the first one went out with, and the pages that showed that one drop it, as they
 * drop every id they show. The key is the sender's own secret: the id, sent to everyone, does
 * not give it away. A message without a key gets an id of `messageIds` instead.
 */
export function keyedMessageId(room: string, from: string, key: string): string {
  // 128 bits, in 22 characters: as unlikely to repeat as the random key behind it.
  return createHash('sha256')
    .update(keyOf(room, from, key))
    .digest('base64url')
    .slice(0, 22)
}

/** True for `lobby`, `random` and `help`, which are always there. */
export function isDefaultRoom(room: string): boolean {
  return (DEFAULT_ROOMS as readonly string[]).includes(room)
}

/**
 * Message ids: a random prefix of this process and a count. They must not repeat across stores
 * or nodes: a page that stayed open through a restart, or whose session moved to another node,
 * remembers the ids it shows, and would drop a new message that reused one.
 */
export function messageIds(): () => string {
  const prefix = randomBytes(4).toString('hex')
  let next = 0
  return () => `${prefix}-${++next}`
}

/**
 * The rooms and history in this process's memory, so a new process starts empty; give the same
 * store to a new `buildChatApp` to keep rooms and history across a server restart in one process.
 * Every answer is ready at once (the promises are for the shape `ChatStore` shares with Redis).
 */
export class MemoryStore implements ChatStore {
  readonly #rooms = new Set<string>(DEFAULT_ROOMS)
  readonly #messages = new Map<string, Stored[]>()
  /**
   * The messages stored with a key (id and place), by room, sender and key, and until when they
   * are remembered past the history (a message still in it is found there). Every entry lives as
   * long, so the map's order (of insertion) is that of expiry.
   */
  readonly #keys = new Map<string, Found & { until: number }>()
  readonly #resendWindow: number
  /**
   * When each room was last used, as a count of uses rather than a time: two uses in the same
   * millisecond still tell which came last.
   */
  readonly #lastUsed = new Map<string, number>()
  #uses = 0
  #version = versionClock()
  /** One count for the people lists of every room: a version need only grow within its room. */
  #peopleVersion = 0
  /** The place of each room's last message (`ChatMessage.seq`). */
  readonly #seqs = new Map<string, number>()
  readonly #nextId = messageIds()
  readonly #historySize: number
  readonly #maxRooms: number

  constructor(options: ChatStoreOptions = {}) {
    this.#historySize = options.history ?? Limits.history
    this.#maxRooms = options.rooms ?? Limits.rooms
    this.#resendWindow = options.resendWindow ?? Limits.resendWindow
  }

  async rooms(): Promise<RoomList> {
    return { rooms: [...this.#rooms], version: this.#version }
  }

  async hasRoom(room: string): Promise<boolean> {
    return this.#rooms.has(room)
  }

  async addRoom(room: string): Promise<boolean> {
    if (this.#rooms.has(room)) return true
    if (this.#rooms.size >= this.#maxRooms) return false
    this.#rooms.add(room)
    this.#changed()
    this.#touch(room)
    return true
  }

  async removeRoom(room: string): Promise<boolean> {
    if (isDefaultRoom(room)) return false
    this.#messages.delete(room)
    this.#seqs.delete(room)
    this.#lastUsed.delete(room)
    if (!this.#rooms.delete(room)) return false
    this.#changed()
    return true
  }

  async join(room: string): Promise<Joined | undefined> {
    if (!this.#rooms.has(room)) return undefined
    this.#touch(room)
    return {
      history: await this.history(room),
      list: await this.rooms(),
      peopleVersion: await this.peopleVersion(),
    }
  }

  async peopleVersion(): Promise<number> {
    this.#peopleVersion = nextVersion(this.#peopleVersion)
    return this.#peopleVersion
  }

  #touch(room: string): void {
    if (this.#rooms.has(room)) this.#lastUsed.set(room, ++this.#uses)
  }

  async quietest(): Promise<string[]> {
    return [...this.#rooms]
      .filter((room) => !isDefaultRoom(room))
      .sort((a, b) => (this.#lastUsed.get(a) ?? 0) - (this.#lastUsed.get(b) ?? 0))
  }

  async add(draft: Draft, key?: string): Promise<Added> {
    if (!this.#rooms.has(draft.room)) return { noRoom: true }
    const twin = key === undefined ? undefined : await this.find(draft.room, draft.from, key)
    if (twin !== undefined) return { twin }
    const seq = nextVersion(this.#seqs.get(draft.room) ?? 0)
    this.#seqs.set(draft.room, seq)
    const id = key === undefined ? this.#nextId() : keyedMessageId(draft.room, draft.from, key)
    const message: ChatMessage = { id, ...draft, seq }
    const stored: Stored = { message }
    if (key !== undefined) {
      stored.sent = keyOf(draft.room, draft.from, key)
      // Monotonic: a step of the wall clock neither forgets the key early nor keeps it longer.
      const until = performance.now() + this.#resendWindow
      this.#keys.set(stored.sent, { id: message.id, seq, until })
    }
    let list = this.#messages.get(message.room)
    if (!list) {
      list = []
      this.#messages.set(message.room, list)
    }
    list.push(stored)
    if (list.length > this.#historySize) list.splice(0, list.length - this.#historySize)
    this.#touch(message.room)
    return { stored: message }
  }

  async find(room: string, from: string, key: string): Promise<Found | undefined> {
    this.#forgetOldKeys()
    const sent = keyOf(room, from, key)
    const kept = this.#keys.get(sent) ?? this.#messages.get(room)?.find((s) => s.sent === sent)?.message
    return kept && { id: kept.id, seq: kept.seq }
  }

  async history(room: string): Promise<ChatMessage[]> {
    return (this.#messages.get(room) ?? []).map((s) => s.message)
  }

  /**
   * Drops the keys past the resend window, the oldest first (see `#keys`); a message still in the
   * history is found there.
   */
  #forgetOldKeys(): void {
    const now = performance.now()
    for (const [name, { until }] of this.#keys) {
      if (until > now) return
      this.#keys.delete(name)
    }
  }

  #changed(): void {
    this.#version = nextVersion(this.#version)
  }
}
