// The answers this node makes to other nodes' requests (cluster queries, broadcasts with acks,
// the count of replies made, a handoff asked for), each PUBLISHed to the asking node's response
// channel. The adapter reads and checks the request; this runs it on this node's sockets.
import type { LocalSockets, MemoryAdapter } from '@parley/server'
import { Answering } from './answering.js'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { AskedHere } from './asked-here.js'
import { type AskWithAck, askHolding } from './held-questions.js'
import { LostAnswers } from './lost-answers.js'
import type { Publisher } from './publish.js'
import { type DistributiveOmit, fits, fromReply, remoteMessage } from './remote.js'
import { RedisErrorCode } from './send.js'
import { answerWithin } from './sender-deadline.js'
import type { UncutSockets } from './uncut-sockets.js'
import type { UnreadTakeovers } from './unread-takeovers.js'
import type { Warnings } from './warnings.js'
import {
  type AdoptRequest,
  decodeEvent,
  fromWireOptions,
  type HandOffRequest,
  packSocket,
  type RepliedRequest,
  type RequestPacket,
  type ResponsePacket,
} from './wire.js'

/** What answering needs of the adapter. */
export interface IncomingParts {
  /** This node's id. */
  readonly node: string
  /** The key prefix: each node reads its answers on `<prefix>:response:<its id>`. */
  readonly prefix: string
  /** This node's rooms and sockets. */
  readonly memory: MemoryAdapter
  /** Asks this node's sockets, those past their claim marker too (see `PastMarkerSockets.askWithAck`). */
  readonly ask: AskWithAck
  readonly sockets: LocalSockets
  /** Sockets joined without a cut: a question reaches them in order with what they hold. */
  readonly uncut: UncutSockets
  /** The sockets a takeover joined, until its tail is read (see unread-takeovers.ts). */
  readonly unread: UnreadTakeovers
  readonly publisher: Publisher
  readonly warnings: Warnings
  /** A request whose event cannot be read: counted as any malformed message. */
  readonly malformed: () => void
  /** This node's last measured Redis round trip, in ms (see `Nodes.roundTrip`). */
  readonly roundTrip: () => number | undefined
  /** Now on Redis' clock, as this node reads it (see `Nodes.redisNow`). */
  readonly redisNow: () => number | undefined
  /** Which Redis server that clock is (see `Nodes.redisRun`). */
  readonly redisRun: () => string | undefined
  /** How long `AskedHere` keeps an ask: a few times this, at least a minute. */
  readonly requestTimeout: number
}

/** Runs other nodes' requests on this node and answers them. */
export class IncomingRequests {
  readonly #node: string
  readonly #prefix: string
  readonly #memory: MemoryAdapter
  readonly #ask: AskWithAck
  readonly #sockets: LocalSockets
  readonly #uncut: UncutSockets
  readonly #unread: UnreadTakeovers
  readonly #publisher: Publisher
  readonly #warnings: Warnings
  readonly #malformed: () => void
  readonly #roundTrip: () => number | undefined
  readonly #redisNow: () => number | undefined
  readonly #redisRun: () => string | undefined
  /** The replies this node still makes to other nodes' broadcasts with acks. */
  readonly #answering = new Answering()
  /** The broadcasts with acks asked of this node's sockets lately: never twice (see asked-here.ts). */
  readonly #asked: AskedHere
  /** Answers Redis could not take: said once per outage. */
  readonly #lost: LostAnswers

  constructor(parts: IncomingParts) {
    this.#node = parts.node
    this.#prefix = parts.prefix
    this.#memory = parts.memory
    this.#ask = parts.ask
    this.#sockets = parts.sockets
    this.#uncut = parts.uncut
    this.#unread = parts.unread
    this.#publisher = parts.publisher
    this.#warnings = parts.warnings
    this.#malformed = parts.malformed
    this.#roundTrip = parts.roundTrip
    this.#redisNow = parts.redisNow
    this.#redisRun = parts.redisRun
    this.#lost = new LostAnswers(parts.warnings)
    this.#asked = new AskedHere(parts.requestTimeout)
  }

  /**
   * Runs `request` of another node, well-formed, not this node's own and not meant for another
   * node alone (its `to`, see `RedisAdapter`), and answers it.
   */
  answer(request: RequestPacket | HandOffRequest | RepliedRequest | AdoptRequest): void {
    const channel = `${this.#prefix}:response:${request.n}`
    const respond = (answer: DistributiveOmit<ResponsePacket, 'n' | 'id'>) => {
      const packet: ResponsePacket = { ...answer, n: this.#node, id: request.id }
      this.#publisher.publish(
        channel,
        packet,
        (why, _sent, code) => this.#lost.lost({ node: request.n, request: request.k }, why, code),
        () => this.#lost.sent(),
      )
    }
    if (request.k === 'replied') {
      const made = request.to === this.#node ? this.#answering.made(request.n, request.id) : undefined
      if (made !== undefined) respond({ k: 'replied', c: made === 'all' ? 0 : made, all: made === 'all' })
      return
    }
    if (request.k === 'handoff') {
      if (request.to !== this.#node) return
      // Before any work: the asker learns that this node is there (see `HANDOFF_ASKED_MS`,
      // ask-handoff.ts).
      if (request.a === true) respond({ k: 'asked' })
      this.#sockets.handOff(request.sid, request.p).then(
        (ok) => respond({ k: 'handoff', ok }),
        (err: unknown) => {
          this.#warnings.warn('handoff', 'the server failed to hand off a session another node asked for', {
            err,
          })
          respond({ k: 'handoff', ok: false })
        },
      )
      return
    }
    if (request.k === 'adopt') {
      if (request.to !== this.#node) return
      // Before any claim: the asker learns that this node is there, and does not ask another
      // node for these sessions (see `ADOPT_TAKING_SHARE` in `@parley/server`).
      if (request.a === true) respond({ k: 'asked' })
      const sessions = request.s.map(([sid, params, left]) => ({ sid, params, left }))
      // A server of an earlier version adopts nothing: the draining node seals them as before.
      const adopted = this.#sockets.adopt ? this.#sockets.adopt(sessions, request.w) : Promise.resolve(0)
      adopted.then(
        (c) => respond({ k: 'adopted', c }),
        (err: unknown) => {
          this.#warnings.warn(
            'handoff',
            'the server failed to adopt the sessions a draining node asked it to',
            {
              err,
            },
          )
          respond({ k: 'adopted', c: 0 })
        },
      )
      return
    }
    const options = fromWireOptions(request.o)
    switch (request.k) {
      case 'fetch':
        this.#memory
          .fetchSockets(options)
          .then((sockets) => respond({ k: 'sockets', s: sockets.map(packSocket) }))
          // Coded as the adapter's other failure of a message read from another node.
          .catch((err: unknown) =>
            this.#warnings.warn('incoming', 'could not describe the sockets', {
              code: RedisErrorCode.HANDLING_FAILED,
              err,
            }),
          )
        return
      case 'join':
        this.#memory.addSockets(options, request.rooms)
        respond({ k: 'done' })
        return
      case 'leave':
        this.#memory.delSockets(options, request.rooms)
        respond({ k: 'done' })
        return
      case 'disconnect':
        this.#memory.disconnectSockets(options)
        respond({ k: 'done' })
        return
      case 'ack': {
        const event = decodeEvent(request.e)
        if (!event) {
          this.#malformed()
          return
        }
        // Asked again (its sender heard this node, or itself, subscribe again): the sockets were
        // asked already, and are not asked twice; the count, lost on its way perhaps, goes again
        // (one still held goes once given, as for the first ask).
        const asked = this.#asked.take(request.n, request.id)
        if (!asked.first) {
          if (asked.count !== undefined) respond({ k: 'count', c: asked.count })
          return
        }
        const message = remoteMessage(event.name, event.args)
        if (!fits(message, request.n, this.#sockets.maxPayload, this.#warnings)) {
          this.#asked.counted(request.n, request.id, 0)
          respond({ k: 'count', c: 0 })
          return
        }
        // Each reply is counted before it is published, so that an answer to `replied`, published
        // later, counts every reply published before it.
        const answering = this.#answering.start(request.n, request.id)
        /** Gives a count held here before its sender stops waiting (see below). */
        let answerBy: AnswersFirstTimer | undefined
        let given = false
        const giveNow = askHolding(
          {
            memory: this.#memory,
            sockets: this.#sockets,
            ask: this.#ask,
            uncut: this.#uncut,
            unread: this.#unread,
            warnings: this.#warnings,
          },
          { node: request.n, q: request.q, ran: true },
          message,
          options,
          request.t,
          (count) => {
            given = true
            answerBy?.clear()
            this.#asked.counted(request.n, request.id, count)
            answering.counted(count)
            respond({ k: 'count', c: count })
          },
          (reply) => {
            answering.made()
            respond(fromReply(reply, message.name))
          },
        )
        // A count still held is bounded at `t` from now, a Redis hop (or more: the question may
        // have waited in its sender's queue) after the sender's timer started: given then, it
        // would come after the sender stopped waiting. Given by this sooner bound instead, with
        // the sockets counted by then (the sockets' own timers keep `t`: a reply made later still
        // counts when it comes in time). Without `l` (a sender of an earlier version), as before.
        // `d` read on another Redis server's clock than this node's reading (a failover, until
        // both nodes beat again) says nothing here: the bound by `l` alone holds then.
        const redisNow = this.#redisNow()
        const otherClock = request.r !== undefined && request.r !== this.#redisRun()
        const leftByRedis =
          request.d === undefined || redisNow === undefined || otherClock ? undefined : request.d - redisNow
        const within = answerWithin(request.t, request.l, this.#roundTrip(), leftByRedis)
        // Its verdict waits a turn (see `AnswersFirstTimer`): a held socket's tail read or
        // confirm that came in time, read only after a stall of this thread past the bound, is
        // counted first (the slack kept above is far more than that turn).
        if (!given && within !== undefined) answerBy = new AnswersFirstTimer(within, giveNow, true)
      }
    }
  }
}
