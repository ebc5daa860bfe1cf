/**
 * True once `promise` settled, after the microtasks queued so far and one turn of the event loop
 * (`setImmediate`, which the suites that use this leave real when they fake timers).
 */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  void promise.then(() => {
    settled = true
  })
  await new Promise((resolve) => setImmediate(resolve))
  return settled
}
