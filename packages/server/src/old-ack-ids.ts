import { isAckId, MAX_ACK_ID } from '@parley/protocol'
import type { SessionSnapshot } from './adapter/handoff.js'

/**
 * The ack id the old node gives its next question, as a handoff's snapshot tells it
 * (`SessionSnapshot.nextAckId`); the node taking the session over numbers its own half the id
 * space away (`farAckId`).
 *
 * A snapshot without it comes from a node of an earlier version (or an adapter that does not
 * carry the field). Such a node numbers a session's questions upward, one after the other,
 * wrapping past `MAX_ACK_ID`, from 1 in each session it opens or takes over; its next id is one
 * past its newest question. Read as 1, a session in which it had asked about 2^30 questions
 * would go on asking in the handoff's tail with the very ids `farAckId(1)` gives this node, and
 * the client's replies would settle the wrong questions. The snapshot lists the questions it
 * still awaits (`pendingAcks`) in the order it asked them: its next id is at least one past the
 * last of them, exactly that when its newest question is still awaited (as a question asked
 * just before the drain is). Read so, a collision takes about 2^30 questions after that one,
 * within one session and before the takeover reads the tail, rather than 2^30 in the session's
 * life. With none awaited, 1 is all the snapshot tells, which may be far from the truth (a node
 * of this version behind an adapter that drops the field numbers from `farAckId` of its own
 * predecessor's): the new node's questions asked before the tail is read then keep their ids
 * only if the tail's questions do not use them (see `RestoringQuestions`).
 */
export function oldNextAckId(snapshot: Pick<SessionSnapshot, 'nextAckId' | 'pendingAcks'>): number {
  if (snapshot.nextAckId !== undefined) return snapshot.nextAckId
  const newest = snapshot.pendingAcks.at(-1)
  if (!isAckId(newest)) return 1
  return newest >= MAX_ACK_ID ? 1 : newest + 1
}
