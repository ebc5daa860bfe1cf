/**
 * A place the code under test waits at until the test opens it: a route's handler, an onClose
 * hook. `reached()` says whether anything waits there yet, so a test can stage what comes next
 * at the moment the wait began.
 */
export interface Gate {
  /** Waits until `open()`; marks the gate reached first. */
  pass(): Promise<void>
  reached(): boolean
  /** Lets every wait through, now and after. Safe to call more than once. */
  open(): void
}

export function gate(): Gate {
  let open = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  let reached = false
  return {
    async pass() {
      reached = true
      await opened
    },
    reached: () => reached,
    open: () => open(),
  }
}
