// The chat page. It talks to the server only through the Parley client loaded by
// <script src="/parley.min.js"> (the package's own browser bundle), and renders every piece of
// text with textContent: nothing a user types is ever parsed as HTML.
import type { Socket } from '@parley/client'
import type { ChatMessage, ClientEvents, ServerEvents } from '../shared.js'
import { createView } from './view.js'

declare const Parley: typeof import('@parley/client')

const view = createView()
const params = new URLSearchParams(location.search)
const forced = params.get('transports')?.split(',').filter(Boolean) as
  | Array<'websocket' | 'sse' | 'polling'>
  | undefined

let socket: Socket<ServerEvents, ClientEvents> | undefined
let nickname = ''
let room = params.get('room') ?? 'lobby'
const shown = new Set<string>()

view.onJoin((name) => {
  nickname = name
  start()
})

function start(): void {
  const s = Parley.connect<ServerEvents, ClientEvents>(location.origin, {
    ...(forced && forced.length > 0 ? { transports: forced } : {}),
    auth: () => ({ nickname }),
  })
  socket = s
  s.on('connect', () => {
    view.transport(s.transport, view.lastFailure() ?? 'connected')
    if (s.recovered) {
      view.banner('Reconnected: nothing was lost.', 3000)
      return
    }
    view.banner(shown.size > 0 ? 'Reconnected with a new session.' : undefined, 3000)
    void enter(room)
  })
  s.on('transport_error', (transport, error) => view.failure(`${transport} ${describe(error)}`))
  s.on('transport', (now, before, why) => view.transport(now, `${why} from ${before}`))
  s.on('disconnect', (reason) => {
    view.transport(null, reason)
    view.banner(`Connection lost (${reason}). Reconnecting…`)
  })
  s.on('reconnect_attempt', (n) => view.banner(`Reconnecting (attempt ${n})…`))
  s.on('connect_error', (error) => view.banner(`Cannot connect: ${error.message}`))
  s.on('chat', (message) => {
    if (message.room === room) show(message)
  })
  s.on('presence', (update) => {
    if (update.room === room) view.people(update.people)
  })
  s.on('typing', (state) => {
    if (state.room === room && state.who !== nickname) view.typing(state.who, state.typing)
  })
  s.on('rooms', (rooms) => view.rooms(rooms, room))
}

async function enter(next: string): Promise<void> {
  if (!socket) return
  const reply = await socket
    .timeout(10_000)
    .emitWithAck('join', { room: next })
    .catch((error: Error) => ({
      ok: false as const,
      error: error.message,
    }))
  if (!reply.ok) return view.error(reply.error)
  room = reply.room
  shown.clear()
  view.clearMessages()
  view.rooms(reply.rooms, room)
  view.people(reply.people)
  for (const message of reply.history) show(message)
}

function show(message: ChatMessage): void {
  if (shown.has(message.id)) return
  shown.add(message.id)
  view.message(message, message.from === nickname)
}

view.onRoom((next) => void enter(next))

view.onSend((text) => {
  if (!socket) return
  const tick = view.pending(nickname, text)
  socket.emit('typing', { room, typing: false })
  socket
    .timeout(15_000)
    .emitWithAck('chat', { room, text })
    .then(
      (reply) => {
        if (!reply.ok) return tick.failed(reply.error)
        shown.add(reply.id)
        tick.delivered()
      },
      (error: Error) => tick.failed(error.message),
    )
})

view.onTyping(() => {
  if (socket?.connected) socket.volatile.emit('typing', { room, typing: true })
})

function describe(error: Error & { code?: string }): string {
  return error.message.replace(/^the /, '')
}
