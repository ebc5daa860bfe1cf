import { createHash } from 'node:crypto'

/**
 * The tag a browser's messages under one nickname carry (`ChatMessage.by`): a SHA-256 of its
 * `visitor` id and the nickname (in NFKC and lower case, so that two letter cases are one).
 * The visitor id is what holds a nickname (see `Nicknames`), so it never goes to anyone else:
 * someone who knew it could take the name, and pass for its owner. The tag says only "the same
 * browser, under this name", and cannot be turned back into the id (a random one of the page's,
 * 96 bits). The nickname is in it so that the tags of one browser's names cannot be told to be
 * one browser's: whoever reads the room sees two people where one browser used two names, as
 * the names say. The page tells its own messages by the tags its joins' answers gave it (`you`),
 * which it keeps. The same on every node, so a history written through one shows as yours
 * through another.
 */
export function authorOf(visitor: string, nickname: string): string {
  // A name of its own in the hash: the tag is not the hash of the id anywhere else. The visitor id
  // has no ':' (see `visitorOf`), so no other pair of id and name gives the same text.
  return (
    createHash('sha256')
      // Not `nicknameKey`, which folds more since: the tags of stored messages would change, and
      // their pages would no longer know them for theirs. One browser's two spellings of a name
      // that the key makes one have two tags, both its own to its pages (they keep every tag).
      .update(`parley-chat-author:${visitor}:${nickname.normalize('NFKC').toLowerCase()}`)
      .digest('base64url')
      .slice(0, 22)
  )
}
