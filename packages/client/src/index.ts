import type { ClientOptions } from './options.js'
import { type DefaultEvents, Socket } from './socket.js'

/**
 * Opens a socket to a Parley server. `url` is the server (`https://example.com`, path from
 * `options.path`) or the full mount point (`https://example.com/parley`); in a browser it
 * defaults to the page's origin.
 *
 * ```ts
 * const socket = connect('https://example.com/parley', { auth: { token } })
 * socket.on('connect', () => console.log('connected over', socket.transport))
 * const reply = await socket.timeout(5000).emitWithAck('chat', { text: 'hello' })
 * ```
 */
export function connect<
  ListenEvents extends object = DefaultEvents,
  EmitEvents extends object = DefaultEvents,
>(url?: string, options?: ClientOptions): Socket<ListenEvents, EmitEvents> {
  return new Socket<ListenEvents, EmitEvents>(url, options)
}

export type {
  AckReply,
  ArgsWithoutAck,
  DefaultEventsMap,
  EmitArgs,
  ErrorOnlyArgs,
  EventsFromSchemas,
  JsonValue,
  SchemaType,
  TimedAck,
  TimedArgs,
  TransportName,
  TypedArgumentsSchema,
  TypedSchema,
  WireValue,
} from '@parley/protocol'
export { CloseReason, ErrorCode, ParleyError } from '@parley/protocol'
export type { ReservedEvents, SwitchReason } from './events.js'
export type { StorageLike } from './memory.js'
export { type ClientOptions, DEFAULTS } from './options.js'
export { type DefaultEvents, type FlaggedEmitter, Socket, type TimedEmitter } from './socket.js'
export type { WebSocketConstructor } from './transports/websocket.js'
