import type { ParleyServer, ServerSocket } from '@parley/server'
import { History } from './history.js'
import { RateLimit } from './rate-limit.js'
import {
  type ChatMessage,
  type ClientEvents,
  DEFAULT_ROOMS,
  Limits,
  ROOM_PATTERN,
  type ServerEvents,
} from './shared.js'

interface ChatData {
  nickname: string
  limit: RateLimit
  /** The chat room the socket is in, for presence when it leaves. */
  room?: string
}

type Chat = ParleyServer<ClientEvents, ServerEvents, ChatData>
type ChatSocket = ServerSocket<ClientEvents, ServerEvents, ChatData>

/**
 * The chat's rules, on top of Parley: nicknames from the handshake's auth, rooms with history
 * and presence, typing indicators, and a rate limit per socket. Every input is checked here;
 * the page is never trusted.
 */
export function setUpChat(chat: Chat): void {
  const rooms = new Set<string>(DEFAULT_ROOMS)
  const history = new History(Limits.history)
  let nextId = 0

  chat.use(async (socket) => {
    const nickname = nicknameOf(socket.handshake.auth)
    if (nickname === undefined) {
      throw Object.assign(new Error(`pick a nickname of 1 to ${Limits.nickname} characters`), {
        code: 'BAD_NICKNAME',
      })
    }
    socket.data.nickname = nickname
    socket.data.limit ??= new RateLimit(Limits.rate, Limits.ratePeriod)
  })

  /** Who is in a room, by nickname, sorted; one name per person even with two tabs. */
  async function people(room: string): Promise<string[]> {
    const sockets = await chat.in(room).fetchSockets()
    return [...new Set(sockets.map((s) => String((s.data as Partial<ChatData>).nickname)))].sort()
  }

  async function announce(room: string): Promise<void> {
    chat.to(room).emit('presence', { room, people: await people(room) })
  }

  /** Puts the socket in `room` (and out of any other chat room); answers what the page needs. */
  async function enter(socket: ChatSocket, room: string): Promise<void> {
    if (socket.rooms.has(room)) return
    const left = [...socket.rooms].filter((r) => rooms.has(r))
    for (const r of left) await socket.leave(r)
    await socket.join(room)
    socket.data.room = room
    await Promise.all([...left, room].map(announce))
  }

  chat.on('connection', (socket: ChatSocket) => {
    socket.on('join', async (request, ack) => {
      const room = typeof request?.room === 'string' ? request.room.trim().toLowerCase() : ''
      if (!ROOM_PATTERN.test(room)) {
        return ack({ ok: false, error: 'room names are 1 to 32 lower-case letters, digits or dashes' })
      }
      if (!rooms.has(room)) {
        if (rooms.size >= Limits.rooms) return ack({ ok: false, error: 'there are too many rooms already' })
        rooms.add(room)
        chat.emit('rooms', [...rooms])
      }
      await enter(socket, room)
      ack({ ok: true, room, history: history.of(room), people: await people(room), rooms: [...rooms] })
    })

    socket.on('chat', async (message, ack) => {
      const room = typeof message?.room === 'string' ? message.room : ''
      const text = typeof message?.text === 'string' ? message.text.trim() : ''
      if (!rooms.has(room)) return ack({ ok: false, error: 'no such room' })
      if (text === '' || text.length > Limits.message) {
        return ack({ ok: false, error: `messages are 1 to ${Limits.message} characters` })
      }
      if (!socket.data.limit.take()) {
        const wait = Math.ceil(socket.data.limit.retryIn() / 1000)
        return ack({
          ok: false,
          error: `slow down: at most ${Limits.rate} messages in ${Limits.ratePeriod / 1000} s (wait ${wait} s)`,
        })
      }
      // A message queued while offline may arrive before the page re-joined its room.
      await enter(socket, room)
      const out: ChatMessage = { id: `m${++nextId}`, room, from: socket.data.nickname, text, at: Date.now() }
      history.add(out)
      socket.to(room).emit('chat', out)
      ack({ ok: true, id: out.id })
    })

    socket.on('typing', (state) => {
      const room = typeof state?.room === 'string' ? state.room : ''
      if (!socket.rooms.has(room)) return
      socket
        .to(room)
        .volatile.emit('typing', { room, who: socket.data.nickname, typing: state.typing === true })
    })

    socket.on('disconnect', () => {
      if (socket.data.room) void announce(socket.data.room)
    })
  })
}

function nicknameOf(auth: unknown): string | undefined {
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) return undefined
  const name = (auth as { nickname?: unknown }).nickname
  if (typeof name !== 'string') return undefined
  const trimmed = name.trim()
  return trimmed.length > 0 && trimmed.length <= Limits.nickname ? trimmed : undefined
}
