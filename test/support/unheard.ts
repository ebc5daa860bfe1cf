// What a body of a test left uncaught or unhandled: a value that fights being read, thrown from
// the library's own code in a timer or a promise, surfaces there (in production, a crash).

/** Runs `body`; what was left uncaught or unhandled meanwhile (and a little after, `afterMs`). */
export async function unheard(body: () => Promise<void>, afterMs = 100): Promise<unknown[]> {
  const heard: unknown[] = []
  const hear = (error: unknown) => void heard.push(error)
  process.on('uncaughtException', hear)
  process.on('unhandledRejection', hear)
  try {
    await body()
    await new Promise((resolve) => setTimeout(resolve, afterMs))
  } finally {
    process.off('uncaughtException', hear)
    process.off('unhandledRejection', hear)
  }
  return heard
}
