// The official OpenAI SDK against a gateway rate limit, used as a user would:
// its own retry (maxRetries 2) must honour the 429's retry-after-ms /
// Retry-After and succeed once the limit lets the request through.
//
//   TG_PROXY_URL=http://127.0.0.1:8081 TG_KEY=tg_… TG_PREFIX=/lim node rate_limit_check.mjs
//
// The rule behind TG_PREFIX allows one request per 2 s for the key. Prints
// one JSON line: every HTTP exchange the SDK made (status, headers of
// interest, when) and how long each call took; exit status 0 when both calls
// succeeded. Run by tests/integration/e2e_sdk_test.cc.
import OpenAI from 'openai';

const PROXY_URL = (process.env.TG_PROXY_URL ?? '').replace(/\/+$/, '');
const KEY = process.env.TG_KEY ?? '';
const PREFIX = process.env.TG_PREFIX ?? '';
if (!PROXY_URL || !KEY) {
  console.error('usage: TG_PROXY_URL=http://host:port TG_KEY=<gateway key> [TG_PREFIX=/lim] node rate_limit_check.mjs');
  process.exit(2);
}

const exchanges = [];
const started = Date.now();
async function countingFetch(url, init) {
  const response = await fetch(url, init);
  exchanges.push({
    status: response.status,
    at_ms: Date.now() - started,
    retry_after: response.headers.get('retry-after'),
    retry_after_ms: response.headers.get('retry-after-ms'),
    limit: response.headers.get('x-ratelimit-limit-requests'),
    remaining: response.headers.get('x-ratelimit-remaining-requests'),
  });
  return response;
}

const openai = new OpenAI({
  baseURL: `${PROXY_URL}${PREFIX}/v1`,
  apiKey: KEY,
  maxRetries: 2,
  timeout: 30_000,
  fetch: countingFetch,
});

const ask = () =>
  openai.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'ping' }] });

let ok = true;
const calls = [];
for (let i = 0; i < 2; ++i) {
  const t0 = Date.now();
  try {
    const answer = await ask();
    calls.push({ ok: true, ms: Date.now() - t0, text: answer.choices?.[0]?.message?.content ?? null });
  } catch (e) {
    ok = false;
    calls.push({ ok: false, ms: Date.now() - t0, error: `${e?.constructor?.name}: ${e?.message}` });
  }
}
console.log(JSON.stringify({ calls, exchanges }));
process.exit(ok ? 0 : 1);
