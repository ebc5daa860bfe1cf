// Calls between the processes of a run, over Node's IPC channel: the runner drives the load
// generator and each server; the load generator reaches the server through the runner.

/** One end of an IPC channel: a ChildProcess, or `process` inside the child. */
export interface Channel {
  send?(message: unknown): unknown
  on(event: 'message', listener: (message: unknown) => void): unknown
  off(event: 'message', listener: (message: unknown) => void): unknown
}

type Message =
  | { rpc: 'call'; id: number; cmd: string; args: unknown }
  | { rpc: 'result'; id: number; ok: true; value: unknown }
  | { rpc: 'result'; id: number; ok: false; error: string }

export type Handler = (cmd: string, args: unknown) => Promise<unknown> | unknown

export interface Peer {
  call<T = unknown>(cmd: string, args?: unknown, timeoutMs?: number): Promise<T>
  /** Stops listening; pending calls reject. */
  detach(): void
}

const isMessage = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && 'rpc' in m && typeof (m as { id?: unknown }).id === 'number'

/** Answers calls with `handler` and makes calls of the other end. */
export function peer(channel: Channel, handler: Handler = () => undefined): Peer {
  let nextId = 1
  const pending = new Map<
    number,
    { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }
  >()
  const send = (m: Message) => channel.send?.(m)
  const listener = (raw: unknown) => {
    if (!isMessage(raw)) return
    if (raw.rpc === 'call') {
      Promise.resolve()
        .then(() => handler(raw.cmd, raw.args))
        .then(
          (value) => send({ rpc: 'result', id: raw.id, ok: true, value }),
          (err: unknown) =>
            send({
              rpc: 'result',
              id: raw.id,
              ok: false,
              error: err instanceof Error ? err.message : String(err),
            }),
        )
      return
    }
    const p = pending.get(raw.id)
    if (!p) return
    pending.delete(raw.id)
    clearTimeout(p.timer)
    if (raw.ok) p.resolve(raw.value)
    else p.reject(new Error(raw.error))
  }
  channel.on('message', listener)
  return {
    call<T>(cmd: string, args?: unknown, timeoutMs = 120_000): Promise<T> {
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${cmd}: no answer in ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
        send({ rpc: 'call', id, cmd, args })
      })
    },
    detach() {
      channel.off('message', listener)
      for (const p of pending.values()) {
        clearTimeout(p.timer)
        p.reject(new Error('detached'))
      }
      pending.clear()
    },
  }
}
