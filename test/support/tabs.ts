// Closing a simulated user's browser as a person does: tab by tab, so that each page says goodbye.
import type { BrowserContext, Page } from 'playwright-core'

export interface CloseTabsOptions {
  /**
   * Close each tab as the browser's own close button does, `beforeunload` first (Playwright's
   * `page.close({ runBeforeUnload: true })`), waiting until it is gone.
   */
  runBeforeUnload?: boolean
  /**
   * Settles once what the closed tabs said on their way out has arrived (their goodbye, at the
   * server): the context is closed only then. A tab's keepalive goodbye outlives the tab, not the
   * browser: one still on its way when the tab is gone (as it is, now and then, on a loaded
   * machine) may be dropped by a context closed under it, as by a browser quit.
   */
  heard?: () => Promise<unknown>
}

/** A tab, standing for every tab of its context, or a context (a user's browser window). */
export type Tabs = Page | BrowserContext

/**
 * Closes every tab of each page's context (or of each context), one at a time, then the context.
 * A closed tab runs its `pagehide` listeners, where a page says goodbye (`socket.disconnect()`):
 * its session ends at once. `context.close()` alone does not run them in chromium-headless-shell
 * (the full browser does): each page's session would then live on at the server, through its
 * recovery window or until the heartbeat gave up on it, keeping the person on every people list
 * and a closing server waiting for a GET that never comes. Pages already closed are passed over.
 */
export async function closeTabs(of: Tabs | readonly Tabs[], options: CloseTabsOptions = {}): Promise<void> {
  const contexts = new Set(
    ([] as Tabs[]).concat(of).map((tabs) => ('newPage' in tabs ? tabs : tabs.context())),
  )
  for (const context of contexts) {
    for (const tab of context.pages()) {
      if (options.runBeforeUnload) {
        // Resolves before the tab has gone: wait for it, as for a tab closed without it.
        const gone = new Promise((resolve) => tab.once('close', resolve))
        await tab.close({ runBeforeUnload: true })
        await gone
      } else {
        await tab.close()
      }
    }
    await options.heard?.()
    await context.close()
  }
}
