// The gate between a test's thread, which runs the server and stalls it, and the Parley client in
// a thread of its own (stall-client-worker.ts), which keeps reading and answering meanwhile.
// `state` (index 0) says when the client may send: HOLD once the server wrote the PING the test
// stalls after, until the stall has begun (STALLED), so that the client's answer reaches the
// server during the stall and never before it; MUTE: the client sends nothing any more, a client
// gone silent. `sent` (index 1) counts what the client sent through the gate.

export const OPEN = 0
export const HOLD = 1
export const STALLED = 2
export const MUTE = 3

export const STATE = 0
export const SENT = 1

/** The longest a held send waits for the stall to begin: a test that never stalls lets it go. */
export const HOLD_BOUND_MS = 5000
