import { createHash } from 'node:crypto'

/**
 * The tag a browser's messages carry (`ChatMessage.by`): a SHA-256 of its `visitor` id. The visitor
 * id is what holds a nickname (see `Nicknames`), so it never goes to anyone else: someone who knew
 * it could take the name, and pass for its owner. The tag says only "the same browser", and cannot
 * be turned back into the id (a random one of the page's, 96 bits). The same on every node, so a
 * history written through one shows as yours through another.
 */
export function authorOf(visitor: string): string {
  // A name of its own in the hash: the tag is not the hash of the id anywhere else.
  return createHash('sha256').update(`parley-chat-author:${visitor}`).digest('base64url').slice(0, 22)
}
