// The graph, notifications, likes and search, driven only by @atproto/api, each account
// through its own PDS. The client checks every answer against its Lexicon; this prints one
// JSON object with what the app view answered (the Python test asserts on it).
// Usage: node appview_graph_check.mjs PDS1_URL PDS2_URL
import { AtpAgent } from '@atproto/api'

const [pds1, pds2] = process.argv.slice(2)
const tag = Math.random().toString(16).slice(2, 8)
const word = `zw${tag}`

async function account(service, name) {
  const agent = new AtpAgent({ service })
  const handle = `${name}${tag}.test`
  await agent.createAccount({ handle, password: 'js-password', email: `${handle}@x.test` })
  return agent
}

async function until(what, read, ok) {
  const deadline = Date.now() + 30000
  for (;;) {
    let value
    try {
      value = await read()
    } catch (err) {
      value = err
    }
    if (!(value instanceof Error) && ok(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${value}`)
    await new Promise((r) => setTimeout(r, 50)) // polling another process, bounded
  }
}

const alice = await account(pds1, 'gal')
const bob = await account(pds1, 'gbo')
const carol = await account(pds2, 'gca')
const dave = await account(pds2, 'gda')
const did = (a) => a.session.did
const now = () => new Date().toISOString()

await alice.follow(did(bob))
await alice.follow(did(carol))
await bob.follow(did(alice))
await carol.follow(did(alice))
const post = await carol.post({ text: `carol's ${word} post` })
await alice.like(post.uri, post.cid)
await alice.repost(post.uri, post.cid)
const ref = { uri: post.uri, cid: post.cid }
await bob.post({ text: 'bob replies', reply: { root: ref, parent: ref } })
const quote = await bob.post({
  text: `bob quotes ${word}`,
  embed: { $type: 'app.bsky.embed.record', record: ref },
})
const block = await alice.app.bsky.graph.block.create(
  { repo: did(alice) },
  { subject: did(dave), createdAt: now() },
)
const list = await alice.app.bsky.graph.list.create(
  { repo: did(alice) },
  { name: 'JS list', purpose: 'app.bsky.graph.defs#curatelist', createdAt: now() },
)
await alice.app.bsky.graph.listitem.create(
  { repo: did(alice) },
  { list: list.uri, subject: did(bob), createdAt: now() },
)

const notes = await until(
  "carol's notifications",
  () => carol.listNotifications(),
  (r) => r.data.notifications.length >= 5,
)
const unread = await carol.countUnreadNotifications()
await carol.updateSeenNotifications(now())
const unreadAfter = await carol.countUnreadNotifications()
const readAfter = await carol.listNotifications()

await until('the list item', () => alice.app.bsky.graph.getList({ list: list.uri }),
  (r) => r.data.items.length === 1)
await alice.mute(did(bob))
const mutes = await alice.app.bsky.graph.getMutes()
await alice.unmute(did(bob))
const mutesAfter = await alice.app.bsky.graph.getMutes()

const follows = await alice.getFollows({ actor: did(alice) })
const followers = await carol.getFollowers({ actor: alice.session.handle })
const blocks = await alice.app.bsky.graph.getBlocks()
const lists = await bob.app.bsky.graph.getLists({ actor: did(alice) })
const listView = await bob.app.bsky.graph.getList({ list: list.uri })
const rels = await bob.app.bsky.graph.getRelationships({
  actor: did(alice),
  others: [did(bob), did(dave), 'nobody.test'],
})
const likes = await carol.getLikes({ uri: post.uri })
const reposts = await carol.getRepostedBy({ uri: post.uri })
const quotes = await carol.app.bsky.feed.getQuotes({ uri: post.uri })
const actorLikes = await alice.getActorLikes({ actor: did(alice) })
const posts = await until('search', () => dave.app.bsky.feed.searchPosts({ q: word }),
  (r) => r.data.posts.length === 2)
const actors = await dave.searchActors({ q: carol.session.handle })
const ahead = await dave.searchActorsTypeahead({ q: carol.session.handle.slice(0, 6) })
const suggestions = await dave.getSuggestions({ limit: 100 })

console.log(
  JSON.stringify({
    dids: { alice: did(alice), bob: did(bob), carol: did(carol), dave: did(dave) },
    reasons: notes.data.notifications.map((n) => n.reason),
    unread: unread.data.count,
    unreadAfter: unreadAfter.data.count,
    allRead: readAfter.data.notifications.every((n) => n.isRead),
    mutes: mutes.data.mutes.map((p) => p.did),
    mutesAfter: mutesAfter.data.mutes.length,
    follows: follows.data.follows.map((p) => p.did),
    followers: followers.data.followers.map((p) => p.did),
    blocks: blocks.data.blocks.map((p) => p.did),
    blockUri: block.uri,
    lists: lists.data.lists.map((l) => [l.uri, l.name, l.listItemCount]),
    listUri: list.uri,
    listItems: listView.data.items.map((i) => i.subject.did),
    rels: rels.data.relationships.map((r) => [r.did ?? r.actor, Boolean(r.following),
      Boolean(r.followedBy), r.blocking ?? null, Boolean(r.notFound)]),
    likes: likes.data.likes.map((l) => l.actor.did),
    reposts: reposts.data.repostedBy.map((p) => p.did),
    quotes: quotes.data.posts.map((p) => p.uri),
    quoteUri: quote.uri,
    actorLikes: actorLikes.data.feed.map((i) => i.post.uri),
    postUri: post.uri,
    searchPosts: posts.data.posts.map((p) => p.uri),
    searchActors: actors.data.actors.map((p) => p.did),
    typeahead: ahead.data.actors.map((p) => p.did),
    suggestions: suggestions.data.actors.map((p) => p.did),
  }),
)
