import type { PacketType as Protocol } from '@parley/protocol'

/*
 * The protocol's packet type numbers, one constant each and typed against its `PacketType`, so
 * they cannot drift. The client imports them as `PacketType` in its place: the bundler writes a
 * constant like these as its number (`5`), but a member of an object as `PacketType.EVENT`,
 * which costs the browser bundle about 110 bytes after gzip.
 */
export const OPEN: typeof Protocol.OPEN = 0
export const CLOSE: typeof Protocol.CLOSE = 1
export const PING: typeof Protocol.PING = 2
export const PONG: typeof Protocol.PONG = 3
export const ACK: typeof Protocol.ACK = 4
export const EVENT: typeof Protocol.EVENT = 5
export const REPLY: typeof Protocol.REPLY = 6
export const ERROR: typeof Protocol.ERROR = 7
export const HELLO: typeof Protocol.HELLO = 8
export const MOVED: typeof Protocol.MOVED = 9
