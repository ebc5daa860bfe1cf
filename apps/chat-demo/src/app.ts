import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import parley, { type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { type ChatMessage, type ClientEvents, Limits, type ServerEvents } from './shared.js'

type ChatSocket = ServerSocket<ClientEvents, ServerEvents>

const publicDir = new URL('../public/', import.meta.url)
const clientBundle = createRequire(import.meta.url).resolve('@parley/client/parley.min.js')

// Everything the page loads comes from this server; inline scripts and styles are refused, so
// a message that slipped past text rendering still could not run.
const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const assets: Record<string, { file: URL | string; type: string }> = {
  '/': { file: new URL('index.html', publicDir), type: 'text/html; charset=utf-8' },
  '/style.css': { file: new URL('style.css', publicDir), type: 'text/css; charset=utf-8' },
  '/app.js': { file: new URL('app.js', publicDir), type: 'text/javascript; charset=utf-8' },
  '/parley.min.js': { file: clientBundle, type: 'text/javascript; charset=utf-8' },
}

/** Builds the chat server (not listening yet), so that tests can start it on port 0. */
export async function buildChatApp(options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })

  app.addHook('onSend', async (_request, reply) => {
    reply.header('Content-Security-Policy', csp)
    reply.header('X-Content-Type-Options', 'nosniff')
    reply.header('Referrer-Policy', 'no-referrer')
  })

  for (const [url, asset] of Object.entries(assets)) {
    app.get(url, async (_request, reply) => reply.type(asset.type).send(await readFile(asset.file)))
  }

  await app.register(parley, { path: '/parley' })
  const chat = app.parley

  chat.use(async (socket) => {
    const auth = socket.handshake.auth
    const nickname =
      typeof auth === 'object' && auth !== null && !Array.isArray(auth) ? auth.nickname : undefined
    if (typeof nickname !== 'string' || nickname.trim() === '' || nickname.length > Limits.nickname) {
      throw Object.assign(new Error(`pick a nickname of 1 to ${Limits.nickname} characters`), {
        code: 'BAD_NICKNAME',
      })
    }
    socket.data.nickname = nickname.trim()
  })

  chat.on('connection', (socket: ChatSocket) => {
    socket.on('chat', (message, ack) => {
      const text = typeof message?.text === 'string' ? message.text.trim() : ''
      if (text === '' || text.length > Limits.message) {
        ack({ ok: false, error: `messages are 1 to ${Limits.message} characters` })
        return
      }
      const out: ChatMessage = { from: String(socket.data.nickname), text, at: Date.now() }
      for (const other of chat.sockets.values()) if (other !== socket) other.emit('chat', out)
      ack({ ok: true })
    })
  })

  return app
}
