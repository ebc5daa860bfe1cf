// What the docs tests read: the documents a user meets, their tables and their links, with the
// fenced code blocks left out (a `#` in a shell block is no heading, a `[x](y)` in code no link).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Every document of the repository a user or a contributor reads, relative to its root: the
 * Markdown files at the root, in `docs/`, and at the top of each package and app.
 */
export const userDocs: readonly string[] = [
  '.',
  'docs',
  ...['packages', 'apps'].flatMap((dir) => readdirSync(join(root, dir)).map((name) => `${dir}/${name}`)),
].flatMap((folder) =>
  readdirSync(join(root, folder))
    .filter((file) => file.endsWith('.md'))
    .map((file) => (folder === '.' ? file : `${folder}/${file}`)),
)

export function read(doc: string): string {
  return readFileSync(join(root, doc), 'utf8')
}

/** The text without its fenced code blocks. */
export function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
}

/** A table row's cells, trimmed; `\|` (a pipe inside a cell) is kept as `|`. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.replaceAll('\\|', '|').trim())
}

/** The rows of every table of the text (the separator rows left out), each a list of cells. */
export function tableRows(text: string): string[][] {
  return prose(text)
    .split('\n')
    .filter((line) => /^\s*\|.*\|\s*$/.test(line) && !/^[\s|:-]+$/.test(line))
    .map(cells)
}

/**
 * The rows of the first table under the heading whose text is `heading` (header row included),
 * up to the next heading. Throws when there is no such heading or table: a test that checks a
 * table must not pass because the table was renamed away.
 */
export function tableUnder(text: string, heading: string): string[][] {
  const lines = prose(text).split('\n')
  const start = lines.findIndex(
    (line) => /^#{1,6} /.test(line) && line.replace(/^#+ /, '').trim() === heading,
  )
  if (start < 0) throw new Error(`no heading "${heading}"`)
  const end = lines.findIndex((line, i) => i > start && /^#{1,6} /.test(line))
  const section = lines.slice(start + 1, end < 0 ? undefined : end)
  const first = section.findIndex((line) => /^\s*\|/.test(line))
  if (first < 0) throw new Error(`no table under "${heading}"`)
  const rows: string[][] = []
  for (const line of section.slice(first)) {
    if (!/^\s*\|/.test(line)) break
    if (!/^[\s|:-]+$/.test(line)) rows.push(cells(line))
  }
  return rows
}

/** The anchors GitHub gives the headings of a document: `## Two words` is `#two-words`. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>()
  const found = new Set<string>()
  for (const [, title = ''] of prose(text).matchAll(/^#{1,6} +(.*?)#*\s*$/gm)) {
    const slug = title
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replaceAll(' ', '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    found.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return found
}

/** The targets of the document's inline links `[text](target)`, outside code. */
export function links(text: string): string[] {
  const outsideCode = prose(text).replace(/`[^`\n]*`/g, '')
  return [...outsideCode.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)].map((m) => m[1] ?? '')
}

/** The ```` ```ts ```` blocks of the text (those marked `no-check` too), each without its fences. */
export function tsBlocks(text: string): string[] {
  return [...text.matchAll(/^```ts(?: [^\n]*)?\n([\s\S]*?)^```/gm)].map((match) => match[1]!)
}
