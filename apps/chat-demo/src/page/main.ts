// The chat page. It talks to the server only through the Parley client loaded by
// <script src="/parley.min.js"> (the package's own browser bundle), and renders every piece of
// text with textContent: nothing a user types is ever parsed as HTML.
import type { Socket, TransportName } from '@parley/client'
import type { ChatMessage, ClientEvents, ServerEvents } from '../shared.js'

declare const Parley: typeof import('@parley/client')

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

const params = new URLSearchParams(location.search)
const forced = params.get('transports')?.split(',').filter(Boolean) as TransportName[] | undefined

let socket: Socket<ServerEvents, ClientEvents> | undefined
let nickname = ''

$('join').addEventListener('submit', (event) => {
  event.preventDefault()
  nickname = $<HTMLInputElement>('nickname').value.trim()
  if (nickname === '') return
  $('join').hidden = true
  $('chat').hidden = false
  start()
})

function start(): void {
  const s = Parley.connect<ServerEvents, ClientEvents>(location.origin, {
    ...(forced && forced.length > 0 ? { transports: forced } : {}),
    auth: () => ({ nickname }),
  })
  socket = s
  s.on('connect', () => {
    setBanner(undefined)
    showTransport(s.transport, s.recovered ? 'resumed' : 'connected')
    if (!s.recovered) notice('You are in the chat.')
  })
  s.on('transport', (now, before, why) => showTransport(now, `${before} → ${now}: ${why}`))
  s.on('disconnect', (reason) => {
    setBanner(`Connection lost (${reason}). Reconnecting…`)
    showTransport(null, reason)
  })
  s.on('reconnect_attempt', (n) => setBanner(`Reconnecting (attempt ${n})…`))
  s.on('connect_error', (error) => setBanner(`Cannot connect: ${error.message} (${error.code})`))
  s.on('chat', (message) => addMessage(message))
  s.on('error', (error) => showError(`${error.message}`))
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = $<HTMLInputElement>('text')
  const text = input.value.trim()
  if (text === '' || !socket) return
  input.value = ''
  const tick = addMessage({ from: nickname, text, at: Date.now() }, true)
  socket
    .timeout(10_000)
    .emitWithAck('chat', { text })
    .then(
      (reply) => {
        if (reply.ok) return setTick(tick, 'delivered', '✓✓')
        setTick(tick, 'failed', '!')
        showError(reply.error)
      },
      (error: Error & { code?: string }) => {
        setTick(tick, 'failed', '!')
        showError(error.message)
      },
    )
})

function addMessage(message: ChatMessage, mine = false): HTMLElement | undefined {
  const item = document.createElement('li')
  if (mine) item.className = 'mine'
  const who = document.createElement('span')
  who.className = 'who'
  who.textContent = message.from
  const text = document.createElement('span')
  text.textContent = message.text
  item.append(who, text)
  let tick: HTMLElement | undefined
  if (mine) {
    tick = document.createElement('span')
    tick.className = 'tick'
    tick.dataset.state = 'sending'
    tick.textContent = '✓'
    tick.title = 'sent'
    item.append(tick)
  }
  append(item)
  return tick
}

function setTick(tick: HTMLElement | undefined, state: 'delivered' | 'failed', symbol: string): void {
  if (!tick) return
  tick.dataset.state = state
  tick.textContent = symbol
  tick.title = state
}

function notice(text: string): void {
  const item = document.createElement('li')
  item.className = 'notice'
  item.textContent = text
  append(item)
}

function append(item: HTMLElement): void {
  const list = $('messages')
  list.append(item)
  list.scrollTop = list.scrollHeight
}

function showTransport(now: TransportName | null, why: string): void {
  const badge = $('transport')
  badge.dataset.transport = now ?? ''
  badge.textContent = now ? `${now}: ${why}` : `offline: ${why}`
}

function setBanner(text: string | undefined): void {
  const banner = $('banner')
  banner.hidden = text === undefined
  banner.textContent = text ?? ''
}

function showError(text: string): void {
  const box = $('error')
  box.hidden = false
  box.textContent = text
  setTimeout(() => {
    box.hidden = true
  }, 4000)
}
