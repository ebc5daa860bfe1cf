// Run before every test file (`setupFiles` in vitest.config.ts). A worker process runs file
// after file, each with its modules loaded afresh, but the process's globals are the same for
// all of them: whatever one file left installed on them (fake timers, a stubbed global, a spy
// on a built-in such as `JSON` or `performance`) is taken back at its end, so that the next file
// starts as in a process of its own. A file that cleans up after itself loses nothing by it.
import { afterAll, vi } from 'vitest'

afterAll(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})
