// Finds and launches the machine's Chromium for browser tests. Browsers are never downloaded:
// tests use the system's. Where none is found the browser suites skip, unless
// PARLEY_REQUIRE_BROWSER=1 (CI), where that is a failure.
import { existsSync } from 'node:fs'
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type LaunchOptions,
} from 'playwright-core'

/**
 * Where to look when PARLEY_CHROMIUM is not set, best first. Debian's `chromium-headless-shell`
 * is the old headless build of the same Chromium: no window system, no GPU process, so it starts
 * in about half the time of the full browser and takes less CPU beside the servers under test
 * (the browser suites share two cores with them). The full `chromium` runs headless as well.
 */
export const chromiumCandidates = [
  '/usr/bin/chromium-headless-shell',
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
] as const

/**
 * The Chromium the browser suites run: PARLEY_CHROMIUM when set, else the first of
 * `chromiumCandidates` that exists. A PARLEY_CHROMIUM naming no file is an error, not a reason to
 * run another browser than the one asked for.
 */
export function findChromium(
  env: NodeJS.ProcessEnv = process.env,
  candidates: readonly string[] = chromiumCandidates,
): string | undefined {
  const asked = env.PARLEY_CHROMIUM
  if (asked !== undefined && asked !== '') {
    if (!existsSync(asked)) throw new Error(`PARLEY_CHROMIUM=${asked} names no file`)
    return asked
  }
  return candidates.find((p) => existsSync(p))
}

// Found once per test file. A wrong PARLEY_CHROMIUM is reported by the browser suites (when they
// ask whether to skip, or launch), not on import: a suite that only shares a helper with them
// (the chat cluster's) runs all the same.
let wrongPath: Error | undefined

/** The Chromium executable, or undefined when there is none (or PARLEY_CHROMIUM names none). */
export const chromiumPath: string | undefined = (() => {
  try {
    return findChromium()
  } catch (error) {
    wrongPath = error as Error
    return undefined
  }
})()

/** True when browser suites must run (CI): a missing Chromium then fails the suite. */
export const browserRequired = process.env.PARLEY_REQUIRE_BROWSER === '1'

/** Whether to skip the browser suites here; throws when they are required but cannot run. */
export function skipBrowserSuites(): boolean {
  if (wrongPath) throw wrongPath
  if (chromiumPath) return false
  if (browserRequired) {
    throw new Error(
      'PARLEY_REQUIRE_BROWSER=1 but no Chromium was found (install Debian chromium-headless-shell or chromium, or set PARLEY_CHROMIUM)',
    )
  }
  console.warn(
    'skipped: no chromium (browser tests need /usr/bin/chromium-headless-shell, /usr/bin/chromium or PARLEY_CHROMIUM)',
  )
  return true
}

const baseArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
]

/** Launches headless Chromium with the flags a closed, loopback-only machine needs. */
export function launchChromium(extraArgs: string[] = [], options: LaunchOptions = {}): Promise<Browser> {
  if (!chromiumPath) throw wrongPath ?? new Error('no chromium')
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...baseArgs, ...extraArgs],
    ...options,
  })
}

/**
 * How long a browser test's Playwright wait or action (a `waitForFunction`, a click, a navigation)
 * takes at most when it names no timeout of its own: the explicit waits' 10 s. Playwright's own
 * default, 30 s, outlasts the 20 s a test is given, and a wait that never ends would then fail as
 * "Test timed out" rather than name what it waited for.
 */
export const PAGE_WAIT_MS = 10_000

/** A new context of `browser` (a person's browser window) whose waits end at `PAGE_WAIT_MS`. */
export async function openContext(
  browser: Browser,
  options?: BrowserContextOptions,
): Promise<BrowserContext> {
  const context = await browser.newContext(options)
  context.setDefaultTimeout(PAGE_WAIT_MS)
  return context
}
