/** What the chat's server and page say to each other; typed on both ends. */
export interface ChatMessage {
  from: string
  text: string
  at: number
}

/** The server's answer to a message: delivered, or refused with a reason a person can read. */
export type ChatReply = { ok: true } | { ok: false; error: string }

/** Events the page sends. */
export interface ClientEvents {
  chat: (message: { text: string }, ack: (reply: ChatReply) => void) => void
}

/** Events the server sends. */
export interface ServerEvents {
  chat: (message: ChatMessage) => void
}

/** Limits the server enforces (the page's maxlength attributes match them). */
export const Limits = {
  nickname: 24,
  message: 500,
} as const
