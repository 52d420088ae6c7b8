// A member through the entryway, driven only by @atproto/api: sign up (no host named),
// post, sign in again in a fresh agent, refresh, post; prints one JSON object with what
// happened (the Python test asserts on it).
// Usage: node entryway_check.mjs ENTRYWAY_URL
import { AtpAgent } from '@atproto/api'

const [entryway] = process.argv.slice(2)
const handle = `js${Math.random().toString(16).slice(2, 8)}.test`
const password = 'a js password'

const first = new AtpAgent({ service: entryway })
await first.createAccount({ handle, password, email: `${handle}@x.test` })
const one = await first.post({ text: 'signed up through the entryway' })

const again = new AtpAgent({ service: entryway })
await again.login({ identifier: handle, password })
await again.sessionManager.refreshSession()
const two = await again.post({ text: 'signed in through the entryway' })

console.log(
  JSON.stringify({
    did: again.session.did,
    handle: again.session.handle,
    firstPds: first.pdsUrl ? first.pdsUrl.toString() : null,
    pds: again.pdsUrl ? again.pdsUrl.toString() : null,
    posts: [one.uri, two.uri],
  }),
)
