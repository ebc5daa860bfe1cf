// Finds and launches the machine's Chromium for browser tests. Browsers are never downloaded:
// tests use the system's Chromium (`/usr/bin/chromium`, or PARLEY_CHROMIUM). Where none is
// found the browser suites skip, unless PARLEY_REQUIRE_BROWSER=1 (CI), where that is a failure.
import { existsSync } from 'node:fs'
import { type Browser, chromium, type LaunchOptions } from 'playwright-core'

const candidates = [process.env.PARLEY_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
  (p): p is string => typeof p === 'string' && p !== '',
)

/** The Chromium executable, or undefined when there is none. */
export const chromiumPath: string | undefined = candidates.find((p) => existsSync(p))

/** True when browser suites must run (CI): a missing Chromium then fails the suite. */
export const browserRequired = process.env.PARLEY_REQUIRE_BROWSER === '1'

/** Whether to skip the browser suites here; throws when they are required but cannot run. */
export function skipBrowserSuites(): boolean {
  if (chromiumPath) return false
  if (browserRequired) {
    throw new Error(
      'PARLEY_REQUIRE_BROWSER=1 but no Chromium was found (install Debian chromium or set PARLEY_CHROMIUM)',
    )
  }
  console.warn('skipped: no chromium (browser tests need /usr/bin/chromium or PARLEY_CHROMIUM)')
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
  if (!chromiumPath) throw new Error('no chromium')
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...baseArgs, ...extraArgs],
    ...options,
  })
}
