// A file replaced whole or not at all: written beside its place under a name of its own, then
// renamed onto it. Two builds that both find the page stale (two suites, or a suite and
// `pnpm start`) each write their own temporary file, and whoever serves `public/app.js` meanwhile
// reads either the old bundle or a new one, never a half-written one.
import { rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

let written = 0

/**
 * Writes `contents` to `path` through a temporary file in the same directory (a rename is atomic
 * only within one file system), named for this process and write so that concurrent builds never
 * share one. The temporary file is removed when the write or the rename fails.
 *
 * @param {string} path
 * @param {string | Uint8Array} contents
 * @returns {Promise<void>}
 */
export async function writeAtomically(path, contents) {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${written++}.tmp`)
  try {
    await writeFile(temporary, contents)
    await rename(temporary, path)
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}
