/*
 * Where the connection is (see the diagram in fallback.ts): one constant each, imported as
 * `State`. Numbers rather than the names as strings: the bundler writes each as its digit, where
 * every `state = 'connecting'` and `state === 'waiting'` carried the word (24 bytes of the
 * script-tag file after gzip, 28 of what a bundler makes of it). Only the connection changes the
 * state; the session and the socket read it.
 */
export const IDLE = 0
export const CONNECTING = 1
export const OPEN = 2
export const WAITING = 3

export type ConnectionState = typeof IDLE | typeof CONNECTING | typeof OPEN | typeof WAITING
