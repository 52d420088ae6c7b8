// Three accounts on two PDSs, driven only by @atproto/api, each through its own PDS;
// prints one JSON object with what the app view answered (the Python test asserts on it).
// Usage: node appview_check.mjs PDS1_URL PDS2_URL
import { AtpAgent } from '@atproto/api'

const [pds1, pds2] = process.argv.slice(2)
const tag = Math.random().toString(16).slice(2, 8)

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

const alice = await account(pds1, 'jsalice')
const bob = await account(pds1, 'jsbob')
const carol = await account(pds2, 'jscarol')
await alice.follow(bob.session.did)
await alice.follow(carol.session.did)
const first = await bob.post({ text: 'bob via @atproto/api' })
const second = await carol.post({ text: 'carol via @atproto/api' })
await alice.like(second.uri, second.cid)
await alice.repost(first.uri, first.cid)
const ref = { uri: second.uri, cid: second.cid }
const reply = await bob.post({ text: 'bob replies', reply: { root: ref, parent: ref } })

const timeline = await until(
  'the timeline',
  () => alice.getTimeline(),
  (r) => r.data.feed.some((i) => i.post.uri === reply.uri),
)
const profile = await until(
  "carol's profile",
  () => alice.getProfile({ actor: carol.session.did }),
  (r) => r.data.followersCount === 1,
)
const thread = await alice.getPostThread({ uri: second.uri })
const author = await carol.getAuthorFeed({ actor: alice.session.did })
const carolPost = timeline.data.feed.find((i) => i.post.uri === second.uri).post

console.log(
  JSON.stringify({
    timeline: timeline.data.feed.map((i) => i.post.uri),
    expected: [reply.uri, first.uri, second.uri, first.uri], // the repost, then the post
    carolLikes: carolPost.likeCount,
    carolReplies: carolPost.replyCount,
    viewerLike: Boolean(carolPost.viewer && carolPost.viewer.like),
    profileFollowers: profile.data.followersCount,
    profileHandle: profile.data.handle,
    carolHandle: carol.session.handle,
    threadReplies: thread.data.thread.replies.map((r) => r.post.uri),
    replyUri: reply.uri,
    authorFeed: author.data.feed.map((i) => [i.post.uri, i.reason ? i.reason.$type : null]),
    firstUri: first.uri,
  }),
)
