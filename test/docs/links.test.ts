// Every link between the repository's documents leads somewhere: the file (or folder) exists,
// and a `#anchor` names a heading of the document it points into.
import { existsSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { anchors, links, read, root, userDocs } from './markdown.js'

describe('links in the docs', () => {
  it.each(userDocs)('in %s lead to files and headings that exist', (doc) => {
    const broken: string[] = []
    for (const link of links(read(doc))) {
      if (/^[a-z][a-z+.-]*:/i.test(link)) continue // https:, mailto: ...: not ours to check
      const [path = '', anchor] = link.split('#')
      const target = path === '' ? join(root, doc) : join(root, dirname(doc), decodeURI(path))
      if (!existsSync(target)) {
        broken.push(`${link}: no such file`)
      } else if (anchor !== undefined) {
        const file = relative(root, target)
        if (statSync(target).isDirectory() || !file.endsWith('.md'))
          broken.push(`${link}: an anchor into ${file}`)
        else if (!anchors(read(file)).has(anchor)) broken.push(`${link}: no heading #${anchor} in ${file}`)
      }
    }
    expect(broken).toEqual([])
  })

  it('read the anchors GitHub makes of headings', () => {
    const text = '# Two words\n## `code`, and (more)!\n```sh\n# not a heading\n```\n## Two words\n'
    expect([...anchors(text)]).toEqual(['two-words', 'code-and-more', 'two-words-1'])
  })
})
