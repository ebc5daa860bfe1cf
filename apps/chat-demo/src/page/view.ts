// Everything the page draws. Text goes in with textContent only.
import { type HeardMessage, Limits } from '../shared.js'
import { characterCount, fitsIn } from '../text-length.js'
import { showsSomething } from '../visible.js'
import { latestPlace, placeOf } from './places.js'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

/**
 * The state of a message of ours: queued (offline), held (waiting for the room the page is on
 * its way to), stalled (the server cannot store it yet: the page sends it again), sent,
 * delivered (acknowledged) or failed.
 */
export interface Tick {
  /** Puts the message at the end of the list again (the list was redrawn for another room). */
  redraw(): void
  queued(): void
  sent(): void
  stalled(): void
  /** Stored as `id`, at its place in the room (`seq`), where it goes (see `placed`). */
  delivered(id: string, seq?: number): void
  failed(reason: string): void
}

/** What the page says of the connection, and the client's own words behind it (a tooltip). */
export interface Said {
  words: string
  detail: string
}

/** Each tick's symbol, and the words a screen reader says for it (also its tooltip). */
const TICKS = {
  queued: { text: '◷', title: 'waiting for the connection' },
  held: { text: '◷', title: 'waiting for the room to open' },
  stalled: { text: '◷', title: 'waiting for the history to come back' },
  sent: { text: '✓', title: 'sent' },
  delivered: { text: '✓✓', title: 'delivered' },
} as const

/** New messages the announcer keeps: enough for a burst to be read in full, no more. */
const ANNOUNCED = 5

/**
 * An element for text someone typed, with its own direction (`dir="auto"`, which also isolates
 * it): a right-to-left name must not swap places with the message beside it, and a message with
 * bidi controls in it (U+202E turns the rest of the line around) must not turn the text after it
 * (the server refuses such controls in names).
 */
function isolated(text: string): HTMLSpanElement {
  const element = document.createElement('span')
  element.dir = 'auto'
  element.textContent = text
  return element
}

export function createView() {
  const messages = $<HTMLOListElement>('messages')
  const announcer = $('announcer')
  const typers = new Map<string, ReturnType<typeof setTimeout>>()
  let bannerTimer: ReturnType<typeof setTimeout> | undefined
  let errorTimer: ReturnType<typeof setTimeout> | undefined
  let lastTyping = 0
  /** The room last brought into view in the rooms list (see `rooms`). */
  let roomInView: string | undefined

  /** Puts `item` before `next` (at the end without one), and keeps the list at its bottom if it was. */
  function append(item: HTMLElement, next: Element | null = null): void {
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40
    messages.insertBefore(item, next)
    if (atBottom) messages.scrollTop = messages.scrollHeight
  }

  /** A drawn message's place in the store (none for one of ours, see `pending`). */
  function seqOf(item: Element | undefined): number | undefined {
    const seq = (item as HTMLElement | undefined)?.dataset.seq
    return seq === undefined ? undefined : Number(seq)
  }

  /**
   * Moves a message of ours, stored now, to its place in the store (`seq`), as a message heard
   * goes (see `placeOf`): two people who write at once see their own message where they wrote it
   * until the store says which came first, and then both pages show that order. Ours written
   * after it are stored after it, whatever their places will be: it goes before them.
   */
  function placed(item: HTMLElement, seq: number): void {
    item.dataset.seq = String(seq)
    // Written for a room the list no longer shows.
    if (item.parentElement !== messages) return
    const drawn = Array.from(messages.children)
    const from = drawn.indexOf(item)
    const others = drawn.filter((other) => other !== item)
    const seqAt = (i: number) => seqOf(others[i]) ?? (i >= from ? Number.POSITIVE_INFINITY : undefined)
    append(item, others[placeOf(others.length, seqAt, seq)] ?? null)
  }

  /** A tick in `state`, and how to change it: the symbol is for the eyes, the words for screen readers. */
  function tickOf(item: HTMLElement, state: keyof typeof TICKS) {
    const tick = document.createElement('span')
    tick.className = 'tick'
    const symbol = document.createElement('span')
    symbol.setAttribute('aria-hidden', 'true')
    const words = document.createElement('span')
    words.className = 'visually-hidden'
    tick.append(symbol, words)
    item.append(tick)
    const show = (state: string, text: string, title: string) => {
      tick.dataset.state = state
      symbol.textContent = text
      words.textContent = title
      tick.title = title
    }
    show(state, TICKS[state].text, TICKS[state].title)
    return show
  }

  function line(from: string, text: string, mine: boolean): HTMLLIElement {
    const item = document.createElement('li')
    if (mine) item.className = 'mine'
    const who = isolated(from)
    who.className = 'who'
    const body = isolated(text)
    body.className = 'text'
    item.append(who, body)
    return item
  }

  function drawTyping(): void {
    const names = [...typers.keys()]
    const said = names.flatMap((name, i) => [...(i > 0 ? [', '] : []), isolated(name)])
    if (names.length > 0) said.push(names.length === 1 ? ' is typing…' : ' are typing…')
    $('typing').replaceChildren(...said)
  }

  return {
    onJoin(handler: (nickname: string) => void): void {
      $('join').addEventListener('submit', (event) => {
        event.preventDefault()
        const name = $<HTMLInputElement>('nickname').value.trim()
        if (name === '') return
        $('join-error').hidden = true
        $('join').hidden = true
        $('chat').hidden = false
        $('text').focus()
        handler(name)
      })
    },

    /** Back to the nickname form, saying why the one chosen cannot be used. */
    askNickname(reason: string): void {
      $('chat').hidden = true
      $('join').hidden = false
      const error = $('join-error')
      error.textContent = reason
      error.hidden = false
      const input = $<HTMLInputElement>('nickname')
      input.focus()
      input.select()
    },

    onSend(handler: (text: string) => void): void {
      $('composer').addEventListener('submit', (event) => {
        event.preventDefault()
        const input = $<HTMLInputElement>('text')
        const text = input.value.trim()
        if (text === '') return
        // Zero-width and bidi control characters alone would show as a blank line: the server
        // refuses such a message, and the page says so before sending it, keeping it in the input.
        if (!showsSomething(text)) {
          this.error('write a message that shows: zero-width and bidi control characters alone show nothing')
          return
        }
        // The input has no maxlength: the browser would cut a longer paste without a word, and
        // the rest would be lost. Kept in the input instead, to be shortened.
        // Counted as the server counts, in characters as people see them (an emoji is one).
        if (!fitsIn(text, Limits.message)) {
          const count = characterCount(text)
          const why = count > Limits.message ? `this one has ${count}` : 'this one has too many marks on them'
          this.error(`messages are at most ${Limits.message} characters: ${why}`)
          return
        }
        input.value = ''
        // Sending says "stopped typing": the next keystroke must say "typing" again at once.
        lastTyping = 0
        handler(text)
      })
    },

    /** Calls `handler` at most once a second while the person types. */
    onTyping(handler: () => void): void {
      $('text').addEventListener('input', () => {
        const now = Date.now()
        if (now - lastTyping < 1000) return
        lastTyping = now
        handler()
      })
    },

    onRoom(handler: (room: string) => void): void {
      $('rooms').addEventListener('click', (event) => {
        const button = (event.target as HTMLElement).closest('button')
        if (button?.dataset.room) handler(button.dataset.room)
      })
      $('new-room').addEventListener('submit', (event) => {
        event.preventDefault()
        const input = $<HTMLInputElement>('room-name')
        const name = input.value.trim().toLowerCase()
        input.value = ''
        if (name !== '') handler(name)
      })
    },

    /**
     * Draws a message, at its place in the room (`ChatMessage.seq`; see `latestPlace` for one
     * without). `announce`: a new one from someone else, for screen readers to read out; not the
     * history of a room just opened, which would have them read up to 100 messages.
     */
    message(message: HeardMessage, mine: boolean, announce = false): void {
      const item = line(message.from, message.text, mine)
      // Ours, heard from the server (the history, or another tab of ours): stored, so delivered.
      if (mine) tickOf(item, 'delivered')
      const drawn = messages.children
      const seqAt = (i: number) => seqOf(drawn[i])
      // An older node's has none: it takes the latest place drawn, and shows where it arrives.
      const seq = message.seq ?? latestPlace(drawn.length, seqAt)
      item.dataset.id = message.id
      item.dataset.seq = String(seq)
      // In the store's order, which two nodes' broadcasts may not keep (see `placeOf`).
      append(item, drawn[placeOf(drawn.length, seqAt, seq)] ?? null)
      if (!announce) return
      const said = document.createElement('p')
      said.textContent = `${message.from}: ${message.text}`
      announcer.append(said)
      while (announcer.childElementCount > ANNOUNCED) announcer.firstElementChild?.remove()
    },

    /** A message of ours on its way: ◷ while offline or held, ✓ sent, ✓✓ when the server has it. */
    pending(from: string, text: string, state: 'queued' | 'held' | 'sent'): Tick {
      const item = line(from, text, true)
      const show = tickOf(item, state)
      const mark = (next: keyof typeof TICKS) => show(next, TICKS[next].text, TICKS[next].title)
      append(item)
      return {
        redraw: () => append(item),
        queued: () => mark('queued'),
        sent: () => mark('sent'),
        stalled: () => mark('stalled'),
        delivered(id, seq) {
          // Drawn already, from a history (the answer came in a new session, after its join's): once.
          for (const drawn of Array.from(messages.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)))
            drawn.remove()
          item.dataset.id = id
          mark('delivered')
          if (seq !== undefined) placed(item, seq)
        },
        failed: (reason) => {
          show('failed', '!', `failed: ${reason}`)
          this.error(reason)
        },
      }
    },

    clearMessages(): void {
      messages.replaceChildren()
      announcer.replaceChildren()
      for (const timer of typers.values()) clearTimeout(timer)
      typers.clear()
      drawTyping()
    },

    rooms(rooms: string[], current: string): void {
      const list = $('rooms')
      let here: HTMLElement | undefined
      list.replaceChildren(
        ...rooms.map((name) => {
          const item = document.createElement('li')
          const button = document.createElement('button')
          button.type = 'button'
          button.dataset.room = name
          button.textContent = `# ${name}`
          if (name === current) {
            button.setAttribute('aria-current', 'true')
            here = button
          }
          item.append(button)
          return item
        }),
      )
      // The rooms list scrolls on its own: a room opened from far down it (or by `?room=`) is
      // brought into view once, not again at every change of the list while someone scrolls it.
      if (here && current !== roomInView) {
        roomInView = current
        here.scrollIntoView({ block: 'nearest', inline: 'nearest' })
      }
    },

    /**
     * `unavailable`: the server could not make the list (a join's answer says so), and `names`
     * holds this person alone; the next list heard is whole again.
     */
    people(names: string[], unavailable = false): void {
      $('people-unavailable').hidden = !unavailable
      const list = $('people')
      // The same people again: a node that took a session over tells its room who is there once
      // more (see the README), most often the list the page shows. Drawn again, it would flash.
      const drawn = Array.from(list.children, (item) => item.textContent)
      if (drawn.length === names.length && names.every((name, i) => drawn[i] === name)) return
      list.replaceChildren(
        ...names.map((name) => {
          const item = document.createElement('li')
          item.textContent = name
          return item
        }),
      )
    },

    typing(who: string, typing: boolean): void {
      clearTimeout(typers.get(who))
      if (typing)
        typers.set(
          who,
          setTimeout(() => this.typing(who, false), 3000),
        )
      else typers.delete(who)
      drawTyping()
    },

    /** The transport in use (none: offline) and why, in words; the client's own in the tooltip. */
    transport(now: string | null, why: Said): void {
      const badge = $('transport')
      badge.dataset.transport = now ?? ''
      badge.textContent = `${now ?? 'offline'}: ${why.words}`
      badge.title = `${now ?? 'offline'}: ${why.detail}`
    },

    /** `detail`: what the client said, in the tooltip, for the developer. */
    banner(text: string | undefined, hideAfterMs?: number, detail?: string): void {
      clearTimeout(bannerTimer)
      const banner = $('banner')
      banner.hidden = text === undefined
      banner.textContent = text ?? ''
      if (detail === undefined) banner.removeAttribute('title')
      else banner.title = detail
      if (text !== undefined && hideAfterMs)
        bannerTimer = setTimeout(() => this.banner(undefined), hideAfterMs)
    },

    error(text: string): void {
      const box = $('error')
      box.hidden = false
      box.textContent = text
      clearTimeout(errorTimer)
      errorTimer = setTimeout(() => {
        box.hidden = true
      }, 5000)
    },
  }
}
