// A socket's reply to a broadcast with acks, taken once. The server's socket registers its
// question before it sends it: one whose send throws then is failed at once by the adapter
// (counted already, its reply will not come), and settles the question registered all the
// same later, at its timeout or its session's end. Counted twice, that one socket would end
// the sender's wait before another socket's reply.
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'

/** `reply`, called for the first reply given alone. */
export function replyOnce(reply: (reply: BroadcastReply) => void): (reply: BroadcastReply) => void {
  let replied = false
  return (made) => {
    if (replied) return
    replied = true
    reply(made)
  }
}

/** The failed reply of a socket counted that threw at its question. */
export function disconnected(): BroadcastReply {
  return { ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the socket has disconnected') }
}
