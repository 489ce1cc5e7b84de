// The Google GenAI and AWS SDKs against the fake provider itself (no
// gateway): the fake's Gemini and Bedrock endpoints, chat and embeddings,
// must be what the official SDKs send and accept, so that what the gateway is
// tested against is the providers' real wire format.
//
//   TG_FAKE_URL=http://127.0.0.1:PORT TG_GEMINI_KEY=… TG_AWS_ACCESS_KEY_ID=… \
//   TG_AWS_SECRET_ACCESS_KEY=… TG_AWS_REGION=us-east-1 node provider_sdk_check.mjs
//
// One line per check ("PASS …" or "FAIL …"); exit status 0 only when every
// check passed. Run by tests/integration/e2e_sdk_test.cc.
import { GoogleGenAI } from '@google/genai';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  InvokeModelCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const FAKE_URL = (process.env.TG_FAKE_URL ?? '').replace(/\/+$/, '');
const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
};
if (!FAKE_URL) env('TG_FAKE_URL');

const genai = new GoogleGenAI({ apiKey: env('TG_GEMINI_KEY'), httpOptions: { baseUrl: FAKE_URL } });
// The SDK speaks HTTP/2 to Bedrock by default (for its bidirectional
// streams); the fake, like the adapter's calls, speaks HTTP/1.1. The requests
// and their signatures are the same either way.
const awsOptions = {
  region: env('TG_AWS_REGION'),
  endpoint: FAKE_URL,
  maxAttempts: 1,
  requestHandler: new NodeHttpHandler(),
};
const bedrock = new BedrockRuntimeClient({
  ...awsOptions,
  credentials: {
    accessKeyId: env('TG_AWS_ACCESS_KEY_ID'),
    secretAccessKey: env('TG_AWS_SECRET_ACCESS_KEY'),
  },
});

// The fake's vectors (tests/fakes/fake_wire.h FakeEmbedding): FNV-1a 64 of
// the text, value j = ((h >> (j % 32)) % 2001 - 1000) / 1024.
function fakeEmbedding(text, dimensions) {
  let h = 14695981039346656037n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 1099511628211n) & 0xffffffffffffffffn;
  }
  const out = [];
  for (let j = 0; j < dimensions; ++j) {
    out.push(Number(((h >> BigInt(j % 32)) % 2001n) - 1000n) / 1024);
  }
  return out;
}

class CheckFailed extends Error {}
function assert(condition, message) {
  if (!condition) throw new CheckFailed(message);
}
const show = (v) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 400 ? `${s.slice(0, 400)}…` : s;
};
const sameVector = (got, want) =>
  Array.isArray(got) && got.length === want.length && got.every((x, i) => x === want[i]);

const results = [];
async function check(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    results.push(true);
    console.log(`PASS ${name} (${Date.now() - started} ms)${detail ? `: ${detail}` : ''}`);
  } catch (e) {
    results.push(false);
    const what = e instanceof CheckFailed ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
    console.log(`FAIL ${name} (${Date.now() - started} ms): ${what}`);
  }
}

// ------------------------------------------------------------------ Google GenAI

await check('genai models.generateContent', async () => {
  const r = await genai.models.generateContent({ model: 'gemini-1.5-flash', contents: 'Hello' });
  assert(typeof r.text === 'string' && r.text.length > 0, `text = ${show(r.text)}`);
  assert(Number.isInteger(r.usageMetadata?.promptTokenCount), `usage = ${show(r.usageMetadata)}`);
  return show(r.text);
});

await check('genai models.embedContent, one text', async () => {
  const r = await genai.models.embedContent({
    model: 'text-embedding-004',
    contents: 'hello world',
    config: { outputDimensionality: 16 },
  });
  assert(r.embeddings?.length === 1, `embeddings = ${show(r.embeddings)}`);
  assert(sameVector(r.embeddings[0].values, fakeEmbedding('hello world', 16)),
    `values = ${show(r.embeddings[0].values)}`);
  return `${r.embeddings[0].values.length} values`;
});

await check('genai models.embedContent, several texts', async () => {
  const texts = ['first text', 'second'];
  const r = await genai.models.embedContent({ model: 'text-embedding-004', contents: texts });
  assert(r.embeddings?.length === 2, `embeddings = ${show(r.embeddings)}`);
  texts.forEach((t, i) =>
    assert(sameVector(r.embeddings[i].values, fakeEmbedding(t, 8)), `values ${i} = ${show(r.embeddings[i].values)}`));
  return `${r.embeddings.length} embeddings`;
});

await check('genai wrong key → an error with status 400 or 403', async () => {
  const wrong = new GoogleGenAI({ apiKey: 'wrong-key', httpOptions: { baseUrl: FAKE_URL } });
  try {
    await wrong.models.embedContent({ model: 'text-embedding-004', contents: 'x' });
  } catch (e) {
    assert(e.status === 400 || e.status === 403, `status = ${e.status} (${e.message})`);
    return `status ${e.status}`;
  }
  throw new CheckFailed('the request succeeded');
});

// ------------------------------------------------------------------ AWS Bedrock

const decodeBody = (r) => JSON.parse(new TextDecoder().decode(r.body));

await check('bedrock ConverseCommand (SigV4)', async () => {
  const r = await bedrock.send(new ConverseCommand({
    modelId: 'anthropic.claude-3-sonnet-20240229-v1:0',
    messages: [{ role: 'user', content: [{ text: 'Hello' }] }],
  }));
  const text = r.output?.message?.content?.[0]?.text;
  assert(typeof text === 'string' && text.length > 0, `output = ${show(r.output)}`);
  assert(Number.isInteger(r.usage?.inputTokens), `usage = ${show(r.usage)}`);
  return show(text);
});

await check('bedrock InvokeModelCommand, amazon.titan-embed-text-v2:0', async () => {
  const r = await bedrock.send(new InvokeModelCommand({
    modelId: 'amazon.titan-embed-text-v2:0',
    contentType: 'application/json',
    accept: 'application/json',
    body: JSON.stringify({ inputText: 'hello world', dimensions: 256 }),
  }));
  const body = decodeBody(r);
  assert(sameVector(body.embedding, fakeEmbedding('hello world', 256)), `embedding = ${show(body.embedding)}`);
  assert(body.inputTextTokenCount === 2, `inputTextTokenCount = ${body.inputTextTokenCount}`);
  return `${body.embedding.length} values`;
});

await check('bedrock InvokeModelCommand, cohere.embed-english-v3', async () => {
  const texts = ['first text', 'second'];
  const r = await bedrock.send(new InvokeModelCommand({
    modelId: 'cohere.embed-english-v3',
    contentType: 'application/json',
    accept: 'application/json',
    body: JSON.stringify({ texts, input_type: 'search_document', embedding_types: ['float'] }),
  }));
  const body = decodeBody(r);
  const vectors = body.embeddings?.float;
  assert(Array.isArray(vectors) && vectors.length === 2, `embeddings = ${show(body.embeddings)}`);
  texts.forEach((t, i) => assert(sameVector(vectors[i], fakeEmbedding(t, 8)), `vector ${i} = ${show(vectors[i])}`));
  return body.response_type;
});

await check('bedrock wrong secret → UnrecognizedClientException or InvalidSignatureException', async () => {
  const wrong = new BedrockRuntimeClient({
    ...awsOptions,
    credentials: { accessKeyId: env('TG_AWS_ACCESS_KEY_ID'), secretAccessKey: 'wrong-secret' },
  });
  try {
    await wrong.send(new InvokeModelCommand({
      modelId: 'amazon.titan-embed-text-v2:0',
      contentType: 'application/json',
      body: JSON.stringify({ inputText: 'x' }),
    }));
  } catch (e) {
    assert(e.$metadata?.httpStatusCode === 403, `status = ${e.$metadata?.httpStatusCode} (${e.name})`);
    return e.name;
  }
  throw new CheckFailed('the request succeeded');
});

const failed = results.filter((ok) => !ok).length;
console.log(`${results.length - failed} of ${results.length} checks passed`);
process.exit(failed === 0 ? 0 : 1);
