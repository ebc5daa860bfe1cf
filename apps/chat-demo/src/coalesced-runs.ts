/**
 * Runs a task for a key when asked, one run per key at a time: asked while it runs, it runs once
 * more after that run, however many times it was asked meanwhile. So the last run always begins
 * after the last ask (it sees what the ask was about), and a burst of asks costs two runs, not one
 * each. A run that fails is only over (a list that could not be made, say): the next ask runs again.
 */
export class CoalescedRuns {
  /** The keys with a run under way: true when asked again meanwhile. */
  readonly #running = new Map<string, boolean>()

  constructor(private readonly task: (key: string) => Promise<void>) {}

  ask(key: string): void {
    if (this.#running.has(key)) {
      this.#running.set(key, true)
      return
    }
    void this.#run(key)
  }

  async #run(key: string): Promise<void> {
    do {
      this.#running.set(key, false)
      await this.task(key).catch(() => {})
    } while (this.#running.get(key))
    this.#running.delete(key)
  }
}
