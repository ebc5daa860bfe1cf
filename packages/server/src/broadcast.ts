import {
  type AckReply,
  type ArgsWithoutAck,
  type BroadcastAckCallback,
  type BroadcastArgs,
  checkEncoded,
  checkEventName,
  ErrorCode,
  type EventNames,
  type EventsMap,
  MAX_ACK_ID,
  MAX_TIMER_MS,
  namedAfterEvent,
  ParleyError,
  type PreparedEvent,
  prepareEvent,
  type WireValue,
} from '@parley/protocol'
import type {
  Adapter,
  BroadcastMessage,
  BroadcastOptions,
  Room,
  SocketDescription,
} from './adapter/adapter.js'
import { argumentError } from './argument-error.js'
import { InputFirstTimer } from './input-first-timer.js'
import { changeRooms, type UnsettledSockets } from './membership.js'
import { MissingReplies } from './missing-replies.js'

type Rooms = Room | readonly Room[]

interface Flags {
  volatile: boolean
  local: boolean
  timeout: number | undefined
  /**
   * `to` was called and named no room (`to([])`): the audience is empty. Kept apart from the
   * rooms because, to the adapter, no room at all means every socket.
   */
  nobody?: boolean
}

/**
 * Who a broadcast reaches and how: rooms, exceptions and flags, chained in any order, then
 * `emit`. Each call returns a new operator, so a shared one (`app.parley.to('lobby')`) can be
 * kept and reused.
 *
 * ```ts
 * app.parley.to('lobby').except('muted').emit('news', { text: 'hi' })
 * socket.to('lobby').emit('chat', msg)                 // everyone in lobby but the sender
 * const replies = await app.parley.timeout(2000).to('voters').emitWithAck('vote?')
 * ```
 */
export class BroadcastOperator<E extends EventsMap> {
  readonly #adapter: Adapter
  readonly #maxPayload: number
  readonly #rooms: ReadonlySet<Room>
  readonly #except: ReadonlySet<Room>
  readonly #flags: Flags
  readonly #unsettled: UnsettledSockets | undefined
  readonly #ackFailed: ((err: unknown) => void) | undefined

  /**
   * Made by the server and by sockets (`app.parley.to(...)`, `socket.broadcast`). `unsettled`:
   * the sockets of this node with a join or leave under way, which `socketsJoin` and
   * `socketsLeave` reach in turn (see `changeRooms`). `ackFailed` hears of a callback given to
   * `emit` that throws (else thrown again, uncaught).
   */
  constructor(
    adapter: Adapter,
    maxPayload: number,
    rooms: ReadonlySet<Room> = new Set(),
    except: ReadonlySet<Room> = new Set(),
    flags: Flags = { volatile: false, local: false, timeout: undefined },
    unsettled?: UnsettledSockets,
    ackFailed?: (err: unknown) => void,
  ) {
    this.#adapter = adapter
    this.#maxPayload = maxPayload
    this.#rooms = rooms
    this.#except = except
    this.#flags = flags
    this.#unsettled = unsettled
    this.#ackFailed = ackFailed
  }

  /**
   * Targets sockets in `rooms` as well (a union). An empty list adds no socket: `to([])` alone
   * reaches no one (socket.io reaches everyone then), as a list of rooms built from data that
   * turned out empty should.
   */
  to(rooms: Rooms): BroadcastOperator<E> {
    const next = union(this.#rooms, rooms)
    return this.#derive(next, this.#except, { ...this.#flags, nobody: next.size === 0 })
  }

  /** The same as `to`. */
  in(rooms: Rooms): BroadcastOperator<E> {
    return this.to(rooms)
  }

  /** Leaves out sockets in `rooms`. */
  except(rooms: Rooms): BroadcastOperator<E> {
    return this.#derive(this.#rooms, union(this.#except, rooms), this.#flags)
  }

  /**
   * Drops the event for sockets that cannot take it now; never kept or replayed. With replies
   * awaited, a socket it was dropped for counts as failed at once, not at the timeout.
   */
  get volatile(): BroadcastOperator<E> {
    return this.#derive(this.#rooms, this.#except, { ...this.#flags, volatile: true })
  }

  /** Only this node's sockets, even with a multi-node adapter. */
  get local(): BroadcastOperator<E> {
    return this.#derive(this.#rooms, this.#except, { ...this.#flags, local: true })
  }

  /** Asks every socket for a reply within `ms` (see `emit` with a callback, and `emitWithAck`). */
  timeout(ms: number): BroadcastOperator<E> {
    checkTimeout(ms)
    return this.#derive(this.#rooms, this.#except, { ...this.#flags, timeout: ms })
  }

  /** A new operator on the same server, for these rooms, exceptions and flags. */
  #derive(rooms: ReadonlySet<Room>, except: ReadonlySet<Room>, flags: Flags): BroadcastOperator<E> {
    return new BroadcastOperator(
      this.#adapter,
      this.#maxPayload,
      rooms,
      except,
      flags,
      this.#unsettled,
      this.#ackFailed,
    )
  }

  /**
   * Sends the event to every targeted socket, encoded once. With `timeout(ms)`, a trailing
   * function gets `(error, replies)`: `error` is PARLEY_ACK_TIMEOUT when some socket did not
   * reply in time (the replies that came are still given).
   *
   * Throws, and sends nothing, what a client would have to refuse: PARLEY_INVALID_EVENT_NAME /
   * PARLEY_RESERVED_EVENT_NAME for the name, PARLEY_UNSERIALIZABLE (arguments nested past 64
   * levels included), PARLEY_PAYLOAD_TOO_LARGE (past `maxPayload`), PARLEY_TOO_DEEP (what a
   * `toJSON` returns, nested that deep) or PARLEY_FORBIDDEN_KEY for the arguments.
   */
  emit<K extends EventNames<E>>(event: K, ...args: BroadcastArgs<E[K]>): true {
    const last = args[args.length - 1]
    if (typeof last === 'function') {
      this.#emitWithReplies(event, args.slice(0, -1) as WireValue[], last as BroadcastAckCallback)
      return true
    }
    const message = this.#message(event, args as WireValue[])
    if (!this.#flags.nobody) this.#adapter.broadcast(message, this.#options())
    return true
  }

  /**
   * Sends the event and resolves with every socket's reply; rejects with PARLEY_ACK_TIMEOUT, or
   * with what `emit` would throw.
   */
  emitWithAck<K extends EventNames<E>>(event: K, ...args: ArgsWithoutAck<E[K]>): Promise<AckReply<E[K]>[]> {
    return new Promise((resolve, reject) => {
      this.#emitWithReplies(event, args as WireValue[], (error, replies) =>
        // The clients' replies, typed as the event map says they are (the client is trusted
        // to answer by the map, as a socket's `emitWithAck` trusts it).
        error ? reject(error) : resolve(replies as AckReply<E[K]>[]),
      )
    })
  }

  /**
   * The broadcast, encoded once and checked once, here at the call site: the adapter hands the
   * same encoding to every local socket, and `LocalSocket.deliver` does not check it again.
   */
  #message(name: string, args: WireValue[]): BroadcastMessage {
    const bad = checkEventName(name)
    if (bad) throw bad
    let prepared: PreparedEvent
    try {
      prepared = prepareEvent(name, args)
      // The longest copy any socket can get: the largest sequence number and ack id.
      const problem = checkEncoded(prepared.text(Number.MAX_SAFE_INTEGER, MAX_ACK_ID), this.#maxPayload)
      if (problem) throw problem
    } catch (error) {
      // Named as a socket's emit names it: `event "<name>": ...`, the code and details kept.
      throw namedAfterEvent(error, name)
    }
    return { name, args, prepared: () => prepared }
  }

  /** Describes every targeted socket (id, handshake, rooms, data). */
  fetchSockets(): Promise<SocketDescription[]> {
    return this.#flags.nobody ? Promise.resolve([]) : this.#adapter.fetchSockets(this.#options())
  }

  /**
   * Makes every targeted socket join `rooms`. A socket of this node whose own joins or leaves
   * are still under way joins after them, if it is targeted then (see `changeRooms`).
   */
  async socketsJoin(rooms: Rooms): Promise<void> {
    const list = roomList(rooms)
    if (!this.#flags.nobody) await changeRooms(this.#adapter, this.#unsettled, this.#options(), list, true)
  }

  /** Makes every targeted socket leave `rooms` (in turn as `socketsJoin`). */
  async socketsLeave(rooms: Rooms): Promise<void> {
    const list = roomList(rooms)
    if (!this.#flags.nobody) await changeRooms(this.#adapter, this.#unsettled, this.#options(), list, false)
  }

  /** Ends the session of every targeted socket ('server disconnect'). */
  async disconnectSockets(): Promise<void> {
    if (!this.#flags.nobody) await this.#adapter.disconnectSockets(this.#options())
  }

  #options(): BroadcastOptions {
    return {
      rooms: this.#rooms,
      except: this.#except,
      volatile: this.#flags.volatile,
      local: this.#flags.local,
    }
  }

  #emitWithReplies(event: string, args: WireValue[], done: BroadcastAckCallback): void {
    const message = this.#message(event, args)
    const timeout = this.#flags.timeout ?? DEFAULT_BROADCAST_TIMEOUT
    const replies: unknown[] = []
    let expected: number | undefined
    let failed = 0
    const missed = new MissingReplies()
    let received = 0
    let finished = false
    /** The adapter threw: `emit` throws its error, and the callback hears nothing more. */
    let thrown = false
    const finish = (error: ParleyError | null) => {
      if (finished) return
      finished = true
      timer?.clear()
      countWait?.clear()
      // Never from inside `emit` (no socket reached, every one dropped): the callback always
      // runs after the call that asked for it, as it does when replies come. One that throws
      // is logged as a socket's ack callback is: uncaught, it would end the process.
      queueMicrotask(() => {
        if (thrown) return
        try {
          done(error, replies)
        } catch (err) {
          if (!this.#ackFailed) throw err
          this.#ackFailed(err)
        }
      })
    }
    /** Whether the verdict at the timeout waited for the count (see `timedOut`). */
    let waitedForCount = false
    /** That wait, while it lasts. */
    let countWait: InputFirstTimer | undefined
    const timedOut = () => {
      if (finished) return
      // The count not given yet: an adapter across nodes whose bound, at the same timeout, was
      // set after this one gives then the count it has (a node's count may not come in time).
      // It set that bound once it asked this node's sockets, up to `asking` ms after this timer:
      // the verdict waits that long, then for the count, so that the counted sockets that did
      // not reply are told apart from the replies that came. The memory adapter counts at once:
      // never so. What it waits for is a timer of this thread, not input: the Redis adapter's
      // bound gives its count in its own timer, which one turn would follow. But a bound may
      // itself wait for input read after a stall, as the server's own deadlines do (two turns,
      // see `InputFirstTimer`): this verdict waits as many, queued behind the bound's, so that
      // its count comes first.
      if (expected === undefined && !waitedForCount) {
        waitedForCount = true
        // One ms more than it took: timers start on the whole-ms clock, so a bound set a fraction
        // of a ms after this timer can end a ms after it.
        countWait = new InputFirstTimer(Math.ceil(asking) + 1, timedOut)
        return
      }
      if (expected === undefined) {
        finish(uncounted())
        return
      }
      const unanswered = expected - received
      missed.timedOut(unanswered)
      finish(
        new ParleyError(
          ErrorCode.ACK_TIMEOUT,
          `${unanswered + failed} socket(s) did not reply within ${timeout} ms${missed}`,
          { details: { replies } },
        ),
      )
    }
    /**
     * No count by the timeout, even a turn later: an adapter of the application's that never
     * gives one (the built-in ones always do). How many sockets did not reply is not known, so
     * none is counted as timed out: the sender hears the replies that came, and that the count
     * did not (`details.counted` false), never a number of sockets made up from nothing.
     */
    const uncounted = () => {
      const someFailed = failed === 0 ? '' : `, ${failed} of them failed${missed}`
      return new ParleyError(
        ErrorCode.ACK_TIMEOUT,
        `the adapter gave no count of the sockets it reached within ${timeout} ms: ${received} replied${someFailed}`,
        { details: { replies, counted: false } },
      )
    }
    // A timer past MAX_TIMER_MS would fire at once: past it, the wait ends with the last answer.
    // Its verdict waits two turns (see `InputFirstTimer`): replies the sockets sent in time, read
    // only after a stall of this thread, are counted first. Each socket's own timer at the same
    // timeout waits as long, set after this one: its verdict comes after this one's, as it did.
    const timer = timeout > MAX_TIMER_MS ? undefined : new InputFirstTimer(timeout, timedOut)
    /** How many ms the adapter's `broadcastWithAck` took (see `timedOut`). */
    let asking = 0
    const check = () => {
      if (expected === undefined || received < expected) return
      finish(
        failed === 0
          ? null
          : new ParleyError(ErrorCode.ACK_TIMEOUT, `${failed} socket(s) did not reply${missed}`, {
              details: { replies },
            }),
      )
    }
    const expect = (total: number) => {
      expected ??= total
      check()
    }
    // An empty audience: no socket to ask, as when no socket is in the rooms named.
    if (this.#flags.nobody) {
      expect(0)
      return
    }
    const askedAt = performance.now()
    try {
      this.#adapter.broadcastWithAck(message, this.#options(), timeout, expect, (reply) => {
        // The callback has the list already: a reply past the timeout does not change it.
        if (finished) return
        received++
        if (reply.ok) replies.push(reply.value)
        else {
          failed++
          missed.add(reply.error)
        }
        check()
      })
    } catch (err) {
      // An adapter of the application's failed: the caller hears it from `emit`, and only from
      // there. The timer would call the callback later (a failure told twice), and whatever the
      // adapter did before it threw (a count, replies) must not reach the callback either.
      thrown = true
      finished = true
      timer?.clear()
      throw err
    }
    asking = performance.now() - askedAt
  }
}

/** How long a broadcast waits for replies when no `timeout(ms)` was given. */
const DEFAULT_BROADCAST_TIMEOUT = 10_000

function union(set: ReadonlySet<Room>, rooms: Rooms): ReadonlySet<Room> {
  const next = new Set(set)
  for (const room of roomList(rooms)) next.add(room)
  return next
}

/**
 * The rooms `rooms` names, each checked by `checkRoom`: all of them, before anything uses one,
 * so that a refused list changes nothing. Plain JavaScript may hand over anything here.
 */
export function roomList(rooms: Rooms): Room[] {
  let list: unknown[]
  try {
    list =
      typeof rooms === 'string' ? [rooms] : isIterable(rooms) ? [...(rooms as Iterable<unknown>)] : [rooms]
  } catch (cause) {
    // A Proxy whose traps throw, an iterable whose iterator throws: no room can be read from it.
    throw argumentError(
      `a room is a string of 1 to ${MAX_ROOM_NAME_LENGTH} characters, or a list of them; reading the value given threw`,
      { cause },
    )
  }
  for (const room of list) checkRoom(room)
  return list as Room[]
}

/**
 * The longest room name, in UTF-16 code units (as `String.length` counts them): an event name's
 * limit. A room name is kept in the set of every socket in it and in the adapter's index, and
 * crosses Redis in each broadcast that names it and in each handed-off session: a name taken
 * straight from user input could otherwise be megabytes, copied to every node.
 */
export const MAX_ROOM_NAME_LENGTH = 256

/**
 * The one rule for a room's name, the same for `join`, `leave` and every operator: a string of
 * 1 to MAX_ROOM_NAME_LENGTH characters. Anything else would be kept as it is and matched by
 * `===`, so a numeric user id (`42`) would be a room apart from `'42'`, and the adapter's lists
 * are typed for strings.
 */
export function checkRoom(room: unknown): asserts room is Room {
  if (typeof room === 'string' && room.length > 0 && room.length <= MAX_ROOM_NAME_LENGTH) return
  throw argumentError(`a room is a string of 1 to ${MAX_ROOM_NAME_LENGTH} characters, not ${described(room)}`)
}

/** What a refused room was, for its error: never the value itself, which may be megabytes. */
function described(room: unknown): string {
  if (typeof room === 'string') return room.length === 0 ? 'an empty string' : `a string of ${room.length}`
  if (typeof room === 'number') return `the number ${room}`
  return `a value of type ${room === null ? 'null' : typeof room}`
}

/**
 * The one rule for `timeout(ms)`, on a socket and on the operators: a number of ms, 0 or more.
 * Past MAX_TIMER_MS (2^31-1), Infinity included, no timer is set: the wait lasts as long as the
 * session (a broadcast's, until every socket replied or failed).
 */
export function checkTimeout(ms: unknown): asserts ms is number {
  if (typeof ms === 'number' && ms >= 0) return
  throw argumentError(
    `timeout must be a number of ms, 0 or more (Infinity: no timer), not ${typeof ms === 'number' ? ms : typeof ms}`,
    { range: typeof ms === 'number' },
  )
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function'
  )
}
