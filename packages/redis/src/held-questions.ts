// A broadcast with acks asked of this node's sockets, as a broadcast reaches them, for a socket
// joined without a cut (see uncut-sockets.ts): while its tail is not read, what reaches it is
// held, and a question asked at once would reach the session ahead of that; once read, the
// tail's places say which questions it asked already.
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSockets,
  MemoryAdapter,
} from '@parley/server'
import { HeldCount } from './held-count.js'
import { askAlone, type Only } from './one-socket.js'
import { disconnected, replyOnce } from './reply-once.js'
import type { HeldQuestion, UncutSockets } from './uncut-sockets.js'
import { heldUntilRead, type UnreadTakeovers } from './unread-takeovers.js'
import type { Warnings } from './warnings.js'

/**
 * `MemoryAdapter.broadcastWithAck`, kept aside for the sockets past their claim marker (see
 * `PastMarkerSockets.askWithAck`); `ran`: read on the channel, which a claimer reads too. May
 * return what gives a count it holds at once, with what it has (see `GiveNow`). An `only` that
 * names one socket (see one-socket.ts) is served without walking the rooms.
 */
export type AskWithAck = (
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  only: Only | undefined,
  ran: boolean,
  own?: number,
) => GiveNow | undefined

/**
 * Gives a count held for sockets whose own count comes later (past their claim marker, joined
 * without a cut, a takeover's tail unread) at once, with the sockets counted by then, those
 * counted later left out, their replies dropped: for a caller whose timeout ends before the
 * question's bound there, set when the question was asked here (a question of this node's own,
 * asked when it came back). Once; nothing after the count was given.
 */
export type GiveNow = () => void

/** What asking with holds needs. */
export interface AskParts {
  readonly memory: MemoryAdapter
  /** This node's sockets: a held socket is found among them by its own rooms (see one-socket.ts). */
  readonly sockets: LocalSockets
  readonly ask: AskWithAck
  readonly uncut: UncutSockets
  /** The sockets a takeover joined, until its tail is read (see unread-takeovers.ts). */
  readonly unread: UnreadTakeovers
  readonly warnings: Warnings
}

/** Where a question is on the channel: its sending node, and its count there (if it carries one). */
export interface QuestionPlace {
  readonly node: string
  readonly q: number | undefined
  /**
   * Whether Redis ran it (read on the channel), rather than never: past a claim marker, the
   * claimer asks the session then, not the old node's tail.
   */
  readonly ran: boolean
}

/**
 * As `MemoryAdapter.broadcastWithAck`, for the question at `place`: a socket joined without a
 * cut is not asked when its tail asked it already, and, while it holds what reaches it, is asked
 * after that once its tail is read (`UncutSockets.holdQuestion`). `expect` then waits for that
 * read (one round trip, bounded; read without the old node's seal, up to four requestTimeouts
 * more for the claim's confirm, see unread-takeovers.ts), and the replies of the sockets asked
 * meanwhile wait for `expect`: the count comes first. A held socket that leaves first, or no
 * longer matches `options` then, is not counted. Never past the question's timeout: the count is
 * given then with the sockets counted by then, the replies they made with it; a held socket
 * counted later is left out, its replies dropped. Returns what gives that count at once, for a
 * caller whose own timeout ends first (a question of this node's, asked here when it came back;
 * another node's, whose sender's timer started a Redis hop before it came: see
 * sender-deadline.ts).
 *
 * `beforeCut` names the sockets that `only` leaves out but that take the question all the same
 * should their tail come unsealed and lack it: this node's own question, PUBLISHed before the
 * claim marker of a socket joined before that marker came back (see `Cut.beforeCut`). Read back
 * while such a socket holds, it is held there too, and asked at the read only when the tail
 * lacks it (see `UncutSockets.read`): the old node, slow to read, had not asked it into the tail,
 * and no other node asks it of the session.
 */
export function askHolding(
  parts: AskParts,
  place: QuestionPlace,
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  only?: (id: string) => boolean,
  beforeCut?: (id: string) => boolean,
): GiveNow {
  const { memory, uncut } = parts
  if (uncut.empty) {
    // Nothing held here: what `parts.ask` holds (a socket past its claim marker) is bounded
    // there, at the same timeout, but for a caller whose own ends first.
    let given = false
    /** Whether the count of `parts.ask` was given, rather than none at the caller's timeout. */
    let counted = false
    const giveAsked = parts.ask(
      message,
      options,
      timeout,
      (now) => {
        if (given) return
        given = counted = true
        expect(now)
      },
      // `parts.ask` gives its count first: a reply after none was given is not counted.
      (made) => {
        if (counted || !given) reply(made)
      },
      only,
      place.ran,
      ownNeverRun(place),
    )
    return () => {
      // What it holds counts first, with the sockets it counted by then.
      giveAsked?.()
      if (given) return
      given = true
      expect(0)
    }
  }
  /** The sockets holding, each with whether it is held for the tail to say (`beforeCut`). */
  const later: { id: string; beforeCut: boolean }[] = []
  // Open until each is counted: the sockets holding (below), and the sockets asked now, whose
  // count comes later when one is past its claim marker (see `PastMarkerSockets.askWithAck`).
  // Replies before the count (a volatile emit dropped at once, a socket asked while others wait
  // for their tail) wait for it.
  const total = new HeldCount(expect, reply)
  const asked = total.part()
  total.holds(
    parts.ask(
      message,
      options,
      timeout,
      asked.count,
      asked.reply,
      (id) => {
        if (only && !only(id)) {
          if (uncut.holds(id) && beforeCut?.(id)) later.push({ id, beforeCut: true })
          return false
        }
        if (uncut.holds(id)) {
          later.push({ id, beforeCut: false })
          return false
        }
        return uncut.takes(id, place.node, place.q)
      },
      place.ran,
      ownNeverRun(place),
    ),
  )
  for (const { id, beforeCut: unlessLacked } of later) {
    total.open()
    /** Asks socket `id` alone; how many it matched. */
    const ask = (replyHere: (reply: BroadcastReply) => void): number => {
      // Inside the takeover's read of the tail, which never rejects: a socket that throws
      // loses this one question alone.
      let asked = 0
      // Its question may be registered before it throws, and settled there too (see reply-once.ts).
      const once = replyOnce(replyHere)
      try {
        // By its own rooms, not a walk of the room: a burst of takeovers holds many of its sockets.
        askAlone(
          memory,
          parts.sockets,
          message,
          options,
          timeout,
          (matched) => {
            asked = matched
          },
          once,
          id,
        )
      } catch (err) {
        parts.warnings.warn(
          'uncut-delivery',
          'a broadcast for a socket taken over before its claim marker came back failed at its delivery, and is lost to its session',
          { err, event: message.name, socket: id },
        )
        // Counted once it matched: its reply, never to come, fails.
        if (asked > 0) once(disconnected())
      }
      return asked
    }
    const question: HeldQuestion = {
      node: place.node,
      q: place.q,
      ...(unlessLacked && { beforeCut: true }),
      settle: (take: boolean) => {
        if (!take) {
          total.settle()
          return
        }
        // Read without its old node's seal, the session may still turn out kept there, which
        // the claim's confirm tells: its count and replies wait for that (see unread-takeovers.ts).
        /** Whether its count joined the others' before they were given. */
        let inCount = false
        // Counted after the count was given (at the question's timeout): left out, its replies
        // dropped, so that the sender hears no more replies than it counted.
        const held = heldUntilRead(parts.unread, id, (made) => {
          if (inCount || !total.given) total.reply(made)
        })
        held.counted(ask(held.reply), (asked) => {
          inCount = total.add(asked)
          total.settle()
        })
      },
      drop: () => total.settle(),
      close: total.give,
    }
    // Held in the same turn it was found holding: one before the cut is not asked otherwise.
    if (!uncut.holdQuestion(id, question))
      question.settle(!unlessLacked && uncut.takes(id, place.node, place.q))
  }
  // None once the count is given (held after the close, see `UncutSockets.holdQuestion`).
  total.opened(timeout)
  return total.give
}

/** The count of a question that never ran (this node's own: no other node's reaches here then). */
function ownNeverRun(place: QuestionPlace): number | undefined {
  return place.ran ? undefined : place.q
}
