/** Writes `contents` to `path` through a temporary file beside it, renamed onto it: readers see the old file or the new one whole. */
export function writeAtomically(path: string, contents: string | Uint8Array): Promise<void>
