import { type ChatMessage, DEFAULT_ROOMS, Limits } from './shared.js'
import {
  type Added,
  type ChatStore,
  type ChatStoreOptions,
  type Draft,
  type Found,
  isDefaultRoom,
  type Joined,
  keyedMessageId,
  keyOf,
  messageIds,
  type RoomList,
  type Stored,
  StoreUnavailableError,
} from './store.js'

/** What the store needs of a node-redis client (the one `connectRedis` makes). */
export interface StoreClient {
  /** True while a command can be sent at once (connected, not reconnecting). */
  readonly isReady: boolean
  sendCommand(args: string[]): Promise<unknown>
}

export interface RedisStoreOptions extends ChatStoreOptions {
  /** Every key starts with this. Default `chat:`. */
  prefix?: string
  /** The longest wait for Redis to answer one command, in ms. Default 2000. */
  timeout?: number
}

// Defines bump(key, keep), which sets a count (the rooms list's version, a room's people list's,
// the place of a room's last message) at `key` to one more than the last, and never less than
// Redis' clock in microseconds (`versionClock`): it still grows after Redis lost its data, or
// forgot the key after `keep` ms (when given). Given as a string: Lua's tostring would write such
// a number with 14 digits, not its 16.
const BUMP = `
local function bump(key, keep)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local version = string.format('%.0f', math.max((tonumber(redis.call('GET', key)) or 0) + 1, now))
  if keep then redis.call('SET', key, version, 'PX', keep) else redis.call('SET', key, version) end
  return version
end`

/**
 * How long a room's people version is kept after its last use, in ms: one that is forgotten starts
 * again from Redis' clock, past every version given before, so no key outlives its room for long
 * and none needs removing.
 */
const PEOPLE_VERSION_KEPT = 86_400_000

/** KEYS: the room's people version. ARGV: how long it is kept. A new version (`peopleVersion`). */
const PEOPLE_VERSION = `${BUMP}
return bump(KEYS[1], ARGV[1])`

/** KEYS: rooms, used, version, uses. ARGV: room, most rooms apart from the default ones. */
const ADD_ROOM = `${BUMP}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], bump(KEYS[3]), ARGV[1])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
return 1`

/** KEYS: rooms, used, version, history, the history's keys, the place of its last message. ARGV: room. */
const REMOVE_ROOM = `${BUMP}
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
bump(KEYS[3])
return 1`

/**
 * One round trip per join: the room's check, its use, its history and the rooms list, read at
 * one moment (no message stored between the history and the list), and a people version for the
 * answer's list. KEYS: rooms, used, uses, version, history, the room's people version. ARGV: room,
 * '1' for a default room, how long the people version is kept. Answers {0}: no such room, or {1,
 * the history, the rooms made, the list's version, the people version}.
 */
const JOIN = `${BUMP}
if ARGV[2] ~= '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0} end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
local version = redis.call('GET', KEYS[4]) or bump(KEYS[4])
return {1, redis.call('LRANGE', KEYS[5], 0, -1), redis.call('ZRANGE', KEYS[1], 0, -1), tostring(version),
  bump(KEYS[6], ARGV[3])}`

/**
 * One round trip per message: the room's check, the resend's check, the message at its place
 * (the room's next `seq`, written into the item ahead of the rest: `{"seq":...,"message":...}`)
 * and the room's use. A message that leaves the history (past its size) takes its key out of the
 * history's keys. KEYS: history, rooms, used, uses, the history's keys, the place of the room's
 * last message, and the sender's key (when there is one). ARGV: the stored message (`Stored`
 * without its place), history size, room, '1' for a default room, the message's id, the resend
 * window in ms, and the key's name (`Stored.sent`, when there is one). Answers {0}: no such room
 * (another node may have forgotten it), {1, seq}: stored at that place, {2, id}: a resend of the
 * message stored under that id.
 */
const ADD_MESSAGE = `${BUMP}
if ARGV[4] ~= '1' and not redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {0} end
if KEYS[7] then
  local twin = redis.call('GET', KEYS[7]) or redis.call('HGET', KEYS[5], ARGV[7])
  if twin then return {2, twin} end
  redis.call('SET', KEYS[7], ARGV[5], 'PX', ARGV[6])
  redis.call('HSET', KEYS[5], ARGV[7], ARGV[5])
end
local seq = bump(KEYS[6])
redis.call('RPUSH', KEYS[1], '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2))
local over = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then
  for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, over - 1)) do
    local ok, stored = pcall(cjson.decode, item)
    if ok and type(stored) == 'table' and type(stored.sent) == 'string' then
      redis.call('HDEL', KEYS[5], stored.sent)
    end
  end
  redis.call('LTRIM', KEYS[1], over, -1)
end
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[3])
end
return {1, seq}`

/** KEYS: the sender's key, the history's keys. ARGV: the key's name. The id stored under it, if any. */
const FIND = `return redis.call('GET', KEYS[1]) or redis.call('HGET', KEYS[2], ARGV[1])`

/** KEYS: rooms, version. The rooms in the order they were made, and the list's version. */
const ROOMS = `${BUMP}
local version = redis.call('GET', KEYS[2]) or bump(KEYS[2])
return { redis.call('ZRANGE', KEYS[1], 0, -1), tostring(version) }`

/**
 * The rooms and history in Redis, shared by every node of a cluster and kept while nodes restart.
 * Keys (after the prefix): `rooms` (a sorted set of the rooms made, by when), `used` (the same
 * rooms, by when each was last used: the quietest goes first when a new room needs its place),
 * `uses` and `version` (counters), `people:<room>` (the last version of the room's people list,
 * kept a day after its last use), `history:<room>` (a list of the last `history` messages, oldest
 * first, as JSON), and two ways for a resend to find the id of the message a sender stored under
 * its key, each a lookup that costs the same however long the history: `keys:<room>` (a hash, by
 * sender and key, of the messages in the history, kept in step with it) and `sent:<room, sender,
 * key>` (a string that expires after the resend window, for a message that left the history). So
 * a message in the history is never stored twice. The default rooms are never in the sets: they
 * are always there, even in an empty Redis.
 *
 * Every command is bounded: while Redis is not connected, or has left a command unanswered for
 * `timeout`, a call rejects at once with `StoreUnavailableError`; otherwise it waits at most
 * `timeout`. (node-redis by itself would hold a command until Redis answers, however long.)
 */
export class RedisStore implements ChatStore {
  readonly #client: StoreClient
  readonly #key: (name: string) => string
  readonly #timeout: number
  readonly #historySize: number
  readonly #resendWindow: number
  /** Rooms at most besides the default ones. */
  readonly #maxMade: number
  readonly #nextId = messageIds()
  /**
   * When each command still unanswered was sent, on the monotonic clock: a step of the wall clock
   * would have the next command refused at once, or the store taken for answering for longer.
   */
  readonly #unanswered = new Set<{ at: number }>()

  constructor(client: StoreClient, options: RedisStoreOptions = {}) {
    this.#client = client
    const prefix = options.prefix ?? 'chat:'
    this.#key = (name) => `${prefix}${name}`
    this.#timeout = options.timeout ?? 2000
    this.#historySize = options.history ?? Limits.history
    this.#resendWindow = options.resendWindow ?? Limits.resendWindow
    this.#maxMade = (options.rooms ?? Limits.rooms) - DEFAULT_ROOMS.length
  }

  async rooms(): Promise<RoomList> {
    const [made, version] = (await this.#eval(ROOMS, [this.#key('rooms'), this.#key('version')], [])) as [
      string[],
      string,
    ]
    return { rooms: [...DEFAULT_ROOMS, ...made], version: Number(version) }
  }

  async hasRoom(room: string): Promise<boolean> {
    if (isDefaultRoom(room)) return true
    return (await this.#send(['ZSCORE', this.#key('rooms'), room])) !== null
  }

  async addRoom(room: string): Promise<boolean> {
    if (isDefaultRoom(room)) return true
    const keys = ['rooms', 'used', 'version', 'uses'].map(this.#key)
    return (await this.#eval(ADD_ROOM, keys, [room, String(this.#maxMade)])) === 1
  }

  async removeRoom(room: string): Promise<boolean> {
    if (isDefaultRoom(room)) return false
    const keys = ['rooms', 'used', 'version', `history:${room}`, `keys:${room}`, `seq:${room}`].map(this.#key)
    return (await this.#eval(REMOVE_ROOM, keys, [room])) === 1
  }

  async join(room: string): Promise<Joined | undefined> {
    const keys = ['rooms', 'used', 'uses', 'version', `history:${room}`, `people:${room}`].map(this.#key)
    const args = [room, isDefaultRoom(room) ? '1' : '0', String(PEOPLE_VERSION_KEPT)]
    const answer = (await this.#eval(JOIN, keys, args)) as [0] | [1, string[], string[], string, string]
    if (answer[0] === 0) return undefined
    const [, items, made, version, peopleVersion] = answer
    return {
      history: parse(items).map((s) => s.message),
      list: { rooms: [...DEFAULT_ROOMS, ...made], version: Number(version) },
      peopleVersion: Number(peopleVersion),
    }
  }

  async peopleVersion(room: string): Promise<number> {
    const version = await this.#eval(
      PEOPLE_VERSION,
      [this.#key(`people:${room}`)],
      [String(PEOPLE_VERSION_KEPT)],
    )
    return Number(version)
  }

  async quietest(): Promise<string[]> {
    return (await this.#send(['ZRANGE', this.#key('used'), '0', '-1'])) as string[]
  }

  async add(draft: Draft, key?: string): Promise<Added> {
    const id = key === undefined ? this.#nextId() : keyedMessageId(draft.room, draft.from, key)
    // Its place is Redis' to give (the script writes it in): `seq` is filled in from the answer.
    const stored: Item = { message: { id, ...draft } }
    if (key !== undefined) stored.sent = keyOf(draft.room, draft.from, key)
    const names = [
      `history:${draft.room}`,
      'rooms',
      'used',
      'uses',
      `keys:${draft.room}`,
      `seq:${draft.room}`,
    ]
    if (stored.sent !== undefined) names.push(`sent:${stored.sent}`)
    const args = [JSON.stringify(stored), String(this.#historySize), draft.room]
    args.push(isDefaultRoom(draft.room) ? '1' : '0', id, String(this.#resendWindow))
    if (stored.sent !== undefined) args.push(stored.sent)
    const [status, answer] = (await this.#eval(ADD_MESSAGE, names.map(this.#key), args)) as [number, string?]
    if (status === 0) return { noRoom: true }
    if (status === 2) return { twin: await this.#found(draft.room, String(answer)) }
    return { stored: { ...stored.message, seq: Number(answer) } }
  }

  async find(room: string, from: string, key: string): Promise<Found | undefined> {
    const sent = keyOf(room, from, key)
    const found = await this.#eval(FIND, [`sent:${sent}`, `keys:${room}`].map(this.#key), [sent])
    return typeof found === 'string' ? this.#found(room, found) : undefined
  }

  /**
   * The message a sender's key names, with its place, read from the history: a second round trip,
   * for a resend only. The key names the id alone, as every version of the chat writes it, so that
   * an older node still running in a rolling upgrade reads what a newer one wrote. A message that
   * has left the history has no place here (see `Found`).
   */
  async #found(room: string, id: string): Promise<Found> {
    const stored = (await this.history(room)).find((m) => m.id === id)
    return stored ? { id, seq: stored.seq } : { id }
  }

  async history(room: string): Promise<ChatMessage[]> {
    const items = (await this.#send(['LRANGE', this.#key(`history:${room}`), '0', '-1'])) as string[]
    return parse(items).map((s) => s.message)
  }

  #eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    return this.#send(['EVAL', script, String(keys.length), ...keys, ...args])
  }

  #send(args: string[]): Promise<unknown> {
    if (!this.#client.isReady) return Promise.reject(new StoreUnavailableError('not connected'))
    const oldest = this.#unanswered.values().next().value
    if (oldest && performance.now() - oldest.at >= this.#timeout) {
      return Promise.reject(
        new StoreUnavailableError(`a command has waited for an answer for ${this.#timeout} ms or more`),
      )
    }
    const entry = { at: performance.now() }
    this.#unanswered.add(entry)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StoreUnavailableError(`no answer within ${this.#timeout} ms`)),
        this.#timeout,
      )
      const done = () => {
        clearTimeout(timer)
        this.#unanswered.delete(entry)
      }
      let sent: Promise<unknown>
      try {
        sent = this.#client.sendCommand(args)
      } catch (error) {
        sent = Promise.reject(error)
      }
      sent.then(
        (value) => {
          done()
          resolve(value)
        },
        (error: unknown) => {
          done()
          reject(new StoreUnavailableError((error as Error)?.message ?? String(error), { cause: error }))
        },
      )
    })
  }
}

/**
 * A history's item as Redis holds it: a `Stored` whose message's place is beside it, written in
 * by the script that stored it (see `ADD_MESSAGE`). An item stored by an older version of the
 * chat, before messages had places, has none (see `parse`).
 */
interface Item {
  seq?: number
  message: Omit<ChatMessage, 'seq'>
  sent?: string
}

/**
 * A history's items as stored; whatever else wrote under its key is skipped, not thrown on. An
 * item without a place (stored by an older version of the chat) takes that of the item before it
 * (0 for the first): so it stays where Redis stored it, between the messages stored before and
 * after it, and the page, which orders a room's messages by their places, shows the history in
 * the order it has here. Most such items were stored before any with a place, and come first;
 * but during a rolling upgrade an old node stores them after a new node's, and then the history's
 * order is still the order they were stored in, not "all the old ones first".
 */
function parse(items: string[]): Stored[] {
  const list: Stored[] = []
  let last = 0
  for (const item of items) {
    try {
      const { seq, message, sent } = JSON.parse(item) as Item
      if (typeof message?.id !== 'string') continue
      if (typeof seq === 'number') last = seq
      const stored: Stored = { message: { ...message, seq: last } }
      if (sent !== undefined) stored.sent = sent
      list.push(stored)
    } catch {}
  }
  return list
}
