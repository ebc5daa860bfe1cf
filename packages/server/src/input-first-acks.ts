import { AckTable, ErrorCode, MAX_TIMER_MS, ParleyError, type Settle } from '@parley/protocol'
import { InputFirstTimer } from './input-first-timer.js'

/**
 * The server's table of replies awaited from one client: `AckTable`, whose timeouts give their
 * verdict two turns of the event loop after their timer ran (see `InputFirstTimer`). After a
 * stall of the server's thread, a reply the client sent in time, read only once the stall ended,
 * then wins over a timeout that ran out during it. A subclass of the server's own, not a change
 * to `AckTable`: the client bundles that class, and its thread stalls with the page's, whose input
 * a browser reads before its timers anyway.
 *
 * Nothing is deferred per reply: only a timeout's verdict waits. A wait's timer is kept by its
 * id and cleared wherever the table ends the wait (`settle` and `rejectAll` end it through
 * `forget`).
 */
export class InputFirstAckTable extends AckTable {
  readonly #timers = new Map<number, InputFirstTimer>()

  override register(settle: Settle, timeout?: number, about = ''): number {
    // No timer (undefined, NaN, past MAX_TIMER_MS): the table waits as long as the session.
    if (!((timeout as number) <= MAX_TIMER_MS)) return super.register(settle, timeout, about)
    const id = super.register(settle, undefined, about)
    const ms = timeout as number
    // The wording of AckTable's own timeout, which the client's table gives too.
    const timedOut = () =>
      this.settle(id, new ParleyError(ErrorCode.ACK_TIMEOUT, `${about}no reply within ${ms} ms`), [])
    this.#timers.set(id, new InputFirstTimer(ms, timedOut))
    return id
  }

  override forget(id: number): void {
    const timer = this.#timers.get(id)
    if (timer) {
      timer.clear()
      this.#timers.delete(id)
    }
    super.forget(id)
  }
}
