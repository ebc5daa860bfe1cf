import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url))

/**
 * Files that must run one at a time, with nothing beside them: they drive Chromium and time what
 * a browser does (a fallback within 1.5 s, a resume across a rolling restart), or wait a few
 * seconds for a whole handoff under load. Beside another test on two cores their clocks would
 * measure the machine, not the code. `pnpm test` runs the `together` project first (the
 * cluster, packaging and bench tests too: they check what happens, never how fast), then this
 * one with `--no-file-parallelism` (Vitest 3 does not honour `fileParallelism` set on a project:
 * the flag on the command line is what holds).
 */
const alone = [
  'packages/client/test/browser.test.ts',
  '**/*.browser.test.ts',
  // Nodes handing sessions off over Redis under a steady broadcast, waited for within seconds.
  'packages/redis/test/handoff-e2e.test.ts',
  'packages/redis/test/drain-climb.test.ts',
  'packages/redis/test/lone-restart-climb.test.ts',
  // A drain's sessions adopted by a live node within the last part of its wait (half a second
  // here), their clients away for seconds while a node broadcasts; and 320 adopted by one node
  // within a second.
  'packages/redis/test/adoption.test.ts',
  // A burst held for seconds by Redis spinning at a pace that answers each command within the
  // node's requestTimeout: beside other files the machine would set that pace, not the test.
  'packages/redis/test/sustained-burst.test.ts',
  'packages/redis/test/resubscribe-burst.test.ts',
]

/**
 * Browser suites that time nothing and wait on no heartbeat, reconnection or rate limit's window:
 * each page acts and the test reads the outcome (the client's bundles connecting and answering on
 * each transport, and two copies of it in one page taking each other's errors; a page's large
 * goodbye, its slow POSTs a second each and no heartbeat, waited for within 5 s; the chat page's: what it shows and sends, with joins and stores held by the
 * test, not by a clock; its edges: lists that scroll, lengths, whose messages are whose; its pages
 * that reload or close, waiting on their goodbye; the words it says of a failure on one server,
 * and of a drain to another (the page's resume, at most a second after the drain's CLOSE, waited
 * for within 10 s);
 * three pages chatting through nginx over three nodes, as the cluster suites of `test/cluster/`
 * do beside the others). They run in `together`, beside the other files, rather than alone.
 */
const beside = [
  'packages/client/test/bundles.browser.test.ts',
  'packages/client/test/credentials.browser.test.ts',
  'packages/client/test/two-copies.browser.test.ts',
  'packages/client/test/large-goodbye.browser.test.ts',
  'packages/server/test/http2.browser.test.ts',
  'apps/chat-demo/test/chat-page.browser.test.ts',
  'apps/chat-demo/test/chat-edges.browser.test.ts',
  'apps/chat-demo/test/chat-reloads.browser.test.ts',
  'apps/chat-demo/test/failure-words.browser.test.ts',
  'apps/chat-demo/test/failure-words-drain.browser.test.ts',
  'apps/chat-demo/test/cluster.browser.test.ts',
]

/**
 * An `alone` glob as `together` excludes it: matching no file of `beside`. Whole file names go
 * inside the negation: Vitest's matcher (picomatch) reads `!(name).browser.test.ts` as "not
 * starting with name", which also took `failure-words-drain` out of `alone` as a prefix of
 * `failure-words` and ran it in both projects. Hence: any name that is neither one of `beside`
 * nor one not ending `.browser.test.ts`.
 */
function besideExcepted(glob: string): string {
  if (glob !== '**/*.browser.test.ts') return glob
  const names = beside.map((path) => path.slice(path.lastIndexOf('/') + 1))
  return `**/!(${names.join('|')}|!(*.browser.test.ts))`
}

/**
 * Two files per core: most of a file's time is waiting on timers and sockets, and the cores stay
 * half idle with fewer (on two cores, 471 files: three files at once took 430 s of wall time with
 * the CPUs busy 117% of one core's time; four took 369 s at 144%, each file's own time a tenth
 * longer). Vitest caps a percentage at the core count, hence the number. `alone` runs with
 * `--no-file-parallelism`: one worker.
 */
const workers = availableParallelism() * 2

/** Each file's modules loaded afresh in the reused worker process (see `poolOptions` below). */
const freshModules = { forks: { isolate: true } }

// Tests run against the TypeScript sources, so `pnpm test` needs no build first.
export default defineConfig({
  resolve: {
    alias: {
      '@parley/protocol': src('protocol'),
      '@parley/server': src('server'),
      '@parley/client': src('client'),
      '@parley/redis': src('redis'),
    },
  },
  test: {
    maxWorkers: workers,
    // As many from the start: fewer, and Vitest 3.2's pool ends the extra workers it starts
    // while reused (below), which fails the run ("Terminating worker thread").
    minWorkers: workers,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Worker processes. Worker threads (`pool: 'threads'`) load a file's modules more cheaply
    // (the forks pool hands each of our 140 to 210 source modules to its process through a file
    // written again for every test file): on 62 files of every package, six runs each, ABAB, on
    // two loaded cores, loading alone (`vitest list`) took 25.1 to 29.0 s of CPU on forks and
    // 19.7 to 23.6 s on threads, about 90 ms a file; but running them, the saving was within the
    // spread (97 to 124 s on forks, 89 to 134 s on threads, medians 108 s both), and the one
    // whole `together` run on threads had a file (probe-auth-at-loss) past its 20 s that never
    // timed out on forks. Not taken until a quiet run shows a gain. No test file changes what is
    // the whole process's (chdir, env for children, signal handlers); temporary names carry the
    // thread's id (`compiled-script.ts`). `vmThreads` loads no Fastify (light-my-request requires
    // `cookie`, an ES module).
    pool: 'forks',
    // A worker process is reused from file to file rather than started for each: starting one
    // and loading Vitest, Fastify and the rest into it was most of a file's cost (on two cores,
    // 450 s of the 1 700 s the `together` files took in all). Each file still gets its modules,
    // ours and its own, loaded afresh (`isolate: true` in each project below), so that module
    // state and `vi.mock` are its own as before; what one file leaves on the process's globals
    // is taken back by `test/support/between-files.ts`.
    poolOptions: { forks: { isolate: false } },
    setupFiles: ['test/support/between-files.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'together',
          poolOptions: freshModules,
          include: [
            'packages/*/src/**/*.test.ts',
            'packages/*/test/**/*.test.ts',
            'apps/*/test/**/*.test.ts',
            'test/**/*.test.ts',
            'bench/test/**/*.test.ts',
            ...beside,
          ],
          exclude: [...configDefaults.exclude, ...alone.map(besideExcepted)],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          poolOptions: freshModules,
          include: alone,
          exclude: [...configDefaults.exclude, ...beside],
          // After the others, in a plain `vitest run` too.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
