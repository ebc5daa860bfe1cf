// Teardown that lets go of everything a test started, whatever fails on the way: a close that
// throws or rejects must not leave the servers, proxies and Redis after it running into the
// next test (or keep the process from ending).

/**
 * Runs every step in order, each awaited, each run even when one before it failed; then throws
 * the first failure, if any.
 */
export async function releaseAll(steps: readonly (() => unknown)[]): Promise<void> {
  const failures: unknown[] = []
  for (const step of steps) {
    try {
      await step()
    } catch (err) {
      failures.push(err)
    }
  }
  if (failures.length > 0) throw failures[0]
}
