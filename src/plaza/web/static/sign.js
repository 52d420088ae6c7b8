// Signs the DAO's ledger events in the browser: the member's key never leaves this page.
// A form marked data-sign asks the server for the event's exact bytes (DAG-CBOR, base64),
// signs them (ECDSA over SHA-256, raw r||s, low-S) and sends back the signature and the
// key's did:key. ES256 (P-256) signs through WebCrypto with a non-extractable key;
// ES256K (secp256k1, which WebCrypto lacks) signs here with RFC 6979 nonces. The curve
// arithmetic below is plain BigInt and not constant-time: it derives the public key (both
// curves) and signs ES256K; it runs only on this page, on the member's own machine.
const CURVES = {
  ES256K: {
    p: 2n ** 256n - 0x1000003d1n, a: 0n,
    n: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
    g: [0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
        0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n],
    codec: [0xe7, 0x01],
  },
  ES256: {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    g: [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
        0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n],
    codec: [0x80, 0x24],
  },
};
const subtle = crypto.subtle;
const mod = (a, m) => ((a % m) + m) % m;

function inv(a, m) {
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function add(c, P, Q) {
  if (!P) return Q;
  if (!Q) return P;
  const [x1, y1] = P, [x2, y2] = Q;
  let l;
  if (x1 === x2) {
    if (mod(y1 + y2, c.p) === 0n) return null;
    l = mod((3n * x1 * x1 + c.a) * inv(2n * y1, c.p), c.p);
  } else {
    l = mod((y2 - y1) * inv(x2 - x1, c.p), c.p);
  }
  const x3 = mod(l * l - x1 - x2, c.p);
  return [x3, mod(l * (x1 - x3) - y1, c.p)];
}

function mul(c, k, P) {
  let R = null;
  for (; k > 0n; k >>= 1n, P = add(c, P, P)) if (k & 1n) R = add(c, R, P);
  return R;
}

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const num = (b) => BigInt("0x" + (hex(b) || "0"));
const bytes = (n) => Uint8Array.from(n.toString(16).padStart(64, "0").match(/../g), (h) => parseInt(h, 16));
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((t, p) => t + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const b64 = (b) => btoa(String.fromCharCode(...b));
const unb64 = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
const b64url = (b) => b64(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function b58(b) {
  const abc = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  let n = num(b), out = "";
  while (n > 0n) { out = abc[Number(n % 58n)] + out; n /= 58n; }
  for (const x of b) { if (x) break; out = "1" + out; }
  return out;
}

async function hmac(key, data) {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

async function signK1(c, d, msg) {
  const z = num(new Uint8Array(await subtle.digest("SHA-256", msg)));
  const x = bytes(d), h = bytes(mod(z, c.n));
  let K = new Uint8Array(32), V = new Uint8Array(32).fill(1);
  K = await hmac(K, cat(V, [0], x, h)); V = await hmac(K, V);
  K = await hmac(K, cat(V, [1], x, h)); V = await hmac(K, V);
  for (;;) {
    V = await hmac(K, V);
    const k = num(V);
    if (k > 0n && k < c.n) {
      const r = mod(mul(c, k, c.g)[0], c.n);
      const s = mod(inv(k, c.n) * (z + r * d), c.n);
      if (r && s) return cat(bytes(r), bytes(s));
    }
    K = await hmac(K, cat(V, [0])); V = await hmac(K, V);
  }
}

// The member's key: its did:key and a function signing bytes with it (raw r||s, low-S).
async function loadKey(alg, secret) {
  const c = CURVES[alg], d = num(secret);
  if (!c || d <= 0n || d >= c.n) throw new Error("that is not a valid signing key");
  const [x, y] = mul(c, d, c.g);
  const did = "did:key:z" + b58(cat(c.codec, [y & 1n ? 3 : 2], bytes(x)));
  let sign = (msg) => signK1(c, d, msg);
  if (alg === "ES256") {
    const jwk = { kty: "EC", crv: "P-256", d: b64url(secret), x: b64url(bytes(x)), y: b64url(bytes(y)) };
    const key = await subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    sign = async (msg) => new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, msg));
  }
  return {
    did,
    sign: async (msg) => {
      const sig = await sign(msg), s = num(sig.slice(32));
      return s > c.n / 2n ? cat(sig.slice(0, 32), bytes(c.n - s)) : sig;
    },
  };
}

async function send(form, fields) {
  const res = await fetch(form.action, {
    method: "POST", body: new URLSearchParams(fields), headers: { accept: "application/json" },
  });
  const body = await res.json().catch(() => ({ message: `the server answered ${res.status}` }));
  return { status: res.status, body };
}

async function signed(form) {
  const text = form.querySelector("[data-key]").value.trim().toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error("the signing key is 64 hexadecimal characters");
  const key = await loadKey(form.querySelector("[data-alg]").value, bytes(BigInt("0x" + text)));
  for (let attempt = 0; attempt < 3; attempt++) {
    const fields = new FormData(form);
    fields.set("signer", key.did);
    fields.set("sign_step", "prepare");
    const prep = await send(form, fields);
    if (prep.status !== 200) throw new Error(prep.body.message);
    const sig = await key.sign(unb64(prep.body.signing));
    for (const name of ["seq", "prev", "time"]) fields.set(name, prep.body[name]);
    fields.set("sign_step", "submit");
    fields.set("sig", b64(sig));
    const done = await send(form, fields);
    if (done.status === 200) return location.assign(done.body.next);
    if (done.status !== 409 || done.body.error !== "AppendConflict") throw new Error(done.body.message);
  }
  throw new Error("the ledger kept moving: try again");
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-sign]")) return;
  event.preventDefault();
  const status = form.querySelector("[data-sign-status]");
  status.textContent = "Signing…";
  signed(form).catch((err) => { status.textContent = err.message; });
});
