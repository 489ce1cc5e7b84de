// The providers' official SDKs against TrustGate, used exactly as a user would
// use them: only baseURL and apiKey point at the gateway.
//
//   TG_PROXY_URL=http://127.0.0.1:8081 TG_KEY=tg_… TG_PREFIX=/sdk node sdk_check.mjs
//
// TG_PREFIX is the rule's path (strip_path on). TG_FAKE_URL (optional), the
// fake provider's base URL, enables the provider-error checks, which inject a
// 400 through its /_fake/faults control endpoint. One line per check ("PASS …" or
// "FAIL …"); exit status 0 only when every check passed. Run by
// tests/integration/e2e_sdk_test.cc; install the packages with `npm ci` here.
//
// Every check that reaches a provider runs twice in a row, so that behind a
// round-robin upstream of two targets both serve it.
//
// maxRetries is 0 so that a gateway 5xx fails the check instead of being
// retried away by the SDK; it does not change what goes over the wire.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const PROXY_URL = (process.env.TG_PROXY_URL ?? '').replace(/\/+$/, '');
const KEY = process.env.TG_KEY ?? '';
const PREFIX = process.env.TG_PREFIX ?? '';
if (!PROXY_URL || !KEY) {
  console.error('usage: TG_PROXY_URL=http://host:port TG_KEY=<gateway key> [TG_PREFIX=/sdk] node sdk_check.mjs');
  process.exit(2);
}

const CLIENT_OPTIONS = { maxRetries: 0, timeout: 30_000 };
const openai = new OpenAI({ baseURL: `${PROXY_URL}${PREFIX}/v1`, apiKey: KEY, ...CLIENT_OPTIONS });
const anthropic = new Anthropic({ baseURL: `${PROXY_URL}${PREFIX}`, apiKey: KEY, ...CLIENT_OPTIONS });

// ------------------------------------------------------------------ harness

class CheckFailed extends Error {}

function assert(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

const isNonEmptyString = (v) => typeof v === 'string' && v.length > 0;
const isCount = (v) => Number.isInteger(v) && v >= 0;
const show = (v) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 600 ? `${s.slice(0, 600)}…` : s;
};

function describeError(e) {
  if (e instanceof CheckFailed) return e.message;
  if (e && typeof e === 'object' && 'status' in e && e.status !== undefined) {
    // An SDK APIError: the HTTP status, the error class and the body the SDK parsed.
    return `${e.constructor.name} status=${e.status} error=${show(e.error)} message=${show(e.message)}`;
  }
  return `${e?.constructor?.name ?? 'Error'}: ${e?.message ?? String(e)}${e?.cause ? ` (cause: ${e.cause.message ?? e.cause})` : ''}`;
}

const results = [];

// Runs `fn` (which returns a short detail string); records and prints the result.
async function check(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    console.log(`PASS ${name} (${Date.now() - started} ms)${detail ? `: ${detail}` : ''}`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${Date.now() - started} ms): ${describeError(e)}`);
  }
}

// Runs one request twice in a row; `fn(i)` returns the provider that served it.
async function twice(fn) {
  const providers = [];
  for (let i = 0; i < 2; ++i) providers.push(await fn(i));
  return `served by ${providers.join(', ')}`;
}

// One plain request, so that behind a round robin of two targets the next
// round trip starts on the other target: each round trip's two turns are then
// served once in each order (tool call by one provider, result to the other).
async function shiftRoundRobin() {
  await openai.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'Hi' }] });
}

function selectedProvider(response) {
  const p = response.headers.get('x-selected-provider');
  assert(isNonEmptyString(p), 'no x-selected-provider response header');
  return p;
}

// ------------------------------------------------------------------ shared bodies

const WEATHER_QUESTION = 'What is the weather in Paris?';
const WEATHER_RESULT = '{"temperature_c": 21, "sky": "sunny"}';

const openaiWeatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string' } },
      required: ['location'],
    },
  },
};

const anthropicWeatherTool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: {
    type: 'object',
    properties: { location: { type: 'string' } },
    required: ['location'],
  },
};

function parseJsonObject(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CheckFailed(`${what} is not JSON: ${show(text)}`);
  }
  assert(value && typeof value === 'object' && !Array.isArray(value), `${what} is not a JSON object: ${show(text)}`);
  return value;
}

function checkChatUsage(usage, where) {
  assert(usage && isCount(usage.prompt_tokens) && isCount(usage.completion_tokens) && isCount(usage.total_tokens),
    `${where}: usage missing or incomplete: ${show(usage)}`);
  assert(usage.completion_tokens > 0, `${where}: usage.completion_tokens is 0: ${show(usage)}`);
  assert(usage.total_tokens === usage.prompt_tokens + usage.completion_tokens,
    `${where}: usage.total_tokens != prompt_tokens + completion_tokens: ${show(usage)}`);
}

function checkAnthropicUsage(usage, where) {
  assert(usage && isCount(usage.input_tokens) && isCount(usage.output_tokens),
    `${where}: usage missing or incomplete: ${show(usage)}`);
  assert(usage.output_tokens > 0, `${where}: usage.output_tokens is 0: ${show(usage)}`);
}

// ------------------------------------------------------------------ OpenAI SDK

await check('openai chat.completions.create (seed body, withResponse)', () =>
  twice(async () => {
    const { data, response } = await openai.chat.completions
      .create({
        model: 'gpt-4',
        messages: [{ role: 'user', content: 'Hello, how are you?' }],
        max_tokens: 1020,
        // Not an OpenAI parameter: the seeds' mixed body. The SDK sends extra
        // params as they are (its documented way for undocumented params).
        system: 'You are an assistant',
      })
      .withResponse();
    assert(response.status === 200, `HTTP ${response.status}`);
    assert(data.object === 'chat.completion', `object = ${show(data.object)}`);
    assert(isNonEmptyString(data.id), `id = ${show(data.id)}`);
    const choice = data.choices?.[0];
    assert(choice, `no choices: ${show(data)}`);
    assert(choice.message?.role === 'assistant', `message.role = ${show(choice.message?.role)}`);
    assert(isNonEmptyString(choice.message?.content), `message.content = ${show(choice.message?.content)}`);
    assert(choice.finish_reason === 'stop', `finish_reason = ${show(choice.finish_reason)}`);
    checkChatUsage(data.usage, 'response');
    return selectedProvider(response);
  }));

await check('openai chat.completions.create stream', () =>
  twice(async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({
        model: 'gpt-4',
        messages: [{ role: 'user', content: 'Hello, how are you?' }],
        max_tokens: 1020,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const provider = selectedProvider(response);
    assert((response.headers.get('content-type') ?? '').startsWith('text/event-stream'),
      `content-type = ${show(response.headers.get('content-type'))}`);
    let text = '';
    let chunks = 0;
    let finishReason = null;
    let usage = null;
    let finishedBeforeUsage = false;
    for await (const chunk of stream) {
      ++chunks;
      assert(chunk.object === 'chat.completion.chunk', `chunk.object = ${show(chunk.object)}`);
      for (const choice of chunk.choices ?? []) {
        assert(finishReason === null, `a chunk after finish_reason: ${show(chunk)}`);
        if (typeof choice.delta?.content === 'string') text += choice.delta.content;
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      if (chunk.usage) {
        finishedBeforeUsage = finishReason !== null;
        usage = chunk.usage;
      }
    }
    assert(chunks > 0, 'no chunks');
    assert(text.length > 0, 'no text in the deltas');
    assert(finishReason === 'stop', `the stream ended without finish_reason "stop" (got ${show(finishReason)})`);
    checkChatUsage(usage, 'stream_options.include_usage');
    assert(finishedBeforeUsage, 'the usage chunk came before the finish_reason');
    return `${provider} (${chunks} chunks, ${show(text)})`;
  }));

await check('openai chat.completions tool call round trip', () =>
  twice(async (i) => {
    if (i === 1) await shiftRoundRobin();
    const messages = [{ role: 'user', content: WEATHER_QUESTION }];
    const { data: first, response } = await openai.chat.completions
      .create({ model: 'gpt-4', messages, tools: [openaiWeatherTool] })
      .withResponse();
    const provider1 = selectedProvider(response);
    const choice = first.choices?.[0];
    assert(choice?.finish_reason === 'tool_calls', `finish_reason = ${show(choice?.finish_reason)}`);
    const call = choice.message?.tool_calls?.[0];
    assert(call?.type === 'function', `tool_calls = ${show(choice.message?.tool_calls)}`);
    assert(isNonEmptyString(call.id), `tool call id = ${show(call.id)}`);
    assert(call.function?.name === 'get_weather', `tool name = ${show(call.function?.name)}`);
    const args = parseJsonObject(call.function.arguments, 'tool arguments');
    assert(isNonEmptyString(args.location), `tool arguments = ${show(call.function.arguments)}`);

    messages.push(choice.message);
    messages.push({ role: 'tool', tool_call_id: call.id, content: WEATHER_RESULT });
    const { data: second, response: response2 } = await openai.chat.completions
      .create({ model: 'gpt-4', messages, tools: [openaiWeatherTool] })
      .withResponse();
    const provider2 = selectedProvider(response2);
    const answer = second.choices?.[0];
    assert(answer?.finish_reason === 'stop', `after the tool result: finish_reason = ${show(answer?.finish_reason)}`);
    assert(isNonEmptyString(answer.message?.content), `after the tool result: content = ${show(answer.message?.content)}`);
    return `${provider1}→${provider2}`;
  }));

await check('openai chat.completions.create stream with a tool call', () =>
  twice(async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({
        model: 'gpt-4',
        messages: [{ role: 'user', content: WEATHER_QUESTION }],
        tools: [openaiWeatherTool],
        stream: true,
      })
      .withResponse();
    const provider = selectedProvider(response);
    const calls = []; // by index, assembled from the deltas as a client does
    let finishReason = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices ?? []) {
        for (const d of choice.delta?.tool_calls ?? []) {
          assert(Number.isInteger(d.index), `tool call delta without an index: ${show(d)}`);
          const c = (calls[d.index] ??= { id: '', name: '', arguments: '' });
          if (d.id) c.id = d.id;
          if (d.function?.name) c.name += d.function.name;
          if (d.function?.arguments) c.arguments += d.function.arguments;
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    }
    assert(finishReason === 'tool_calls', `finish_reason = ${show(finishReason)}`);
    assert(calls.length === 1, `tool calls assembled: ${show(calls)}`);
    assert(isNonEmptyString(calls[0].id), `tool call id = ${show(calls[0].id)}`);
    assert(calls[0].name === 'get_weather', `tool name = ${show(calls[0].name)}`);
    const args = parseJsonObject(calls[0].arguments, 'streamed tool arguments');
    assert(isNonEmptyString(args.location), `tool arguments = ${show(calls[0].arguments)}`);
    return provider;
  }));

if (typeof openai.responses?.create === 'function') {
  await check('openai responses.create', () =>
    twice(async () => {
      const { data, response } = await openai.responses
        .create({ model: 'gpt-4', input: 'Hello, how are you?', instructions: 'You are an assistant', max_output_tokens: 1020 })
        .withResponse();
      assert(data.object === 'response', `object = ${show(data.object)}`);
      assert(data.status === 'completed', `status = ${show(data.status)}`);
      assert(isNonEmptyString(data.output_text), `output_text = ${show(data.output_text)} (output: ${show(data.output)})`);
      const u = data.usage;
      assert(u && isCount(u.input_tokens) && isCount(u.output_tokens) && isCount(u.total_tokens) && u.output_tokens > 0,
        `usage = ${show(u)}`);
      return selectedProvider(response);
    }));

  await check('openai responses.create stream', () =>
    twice(async () => {
      const { data: stream, response } = await openai.responses
        .create({ model: 'gpt-4', input: 'Hello, how are you?', stream: true })
        .withResponse();
      const provider = selectedProvider(response);
      let text = '';
      let completed = null;
      let last = null;
      for await (const event of stream) {
        last = event.type;
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') completed = event.response;
      }
      assert(text.length > 0, 'no response.output_text.delta text');
      assert(completed, `no response.completed event (last event: ${show(last)})`);
      assert(last === 'response.completed', `the last event is ${show(last)}`);
      assert(completed.status === 'completed', `status = ${show(completed.status)}`);
      assert(isCount(completed.usage?.output_tokens) && completed.usage.output_tokens > 0,
        `usage = ${show(completed.usage)}`);
      return `${provider} (${show(text)})`;
    }));
} else {
  console.log('SKIP openai responses.create: this openai SDK has no Responses API');
}

await check('openai wrong key → AuthenticationError', async () => {
  const wrong = new OpenAI({ baseURL: `${PROXY_URL}${PREFIX}/v1`, apiKey: 'tg_wrong_key', ...CLIENT_OPTIONS });
  try {
    await wrong.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'Hi' }] });
  } catch (e) {
    assert(e instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${describeError(e)}`);
    assert(e.status === 401, `status = ${e.status}`);
    // OpenAI's error body {"error": {"message", "type", …}}, of which the SDK keeps "error".
    assert(isNonEmptyString(e.error?.message), `error body not in OpenAI's format: ${show(e.error)}`);
    return `status ${e.status}, error ${show(e.error)}`;
  }
  throw new CheckFailed('the request succeeded');
});

// The models the route serves, from the gateway's configuration (no provider
// call): the seeds' targets list gpt-3.5-turbo, gpt-4, gpt-4o-mini (openai) and
// claude-3-sonnet (anthropic).
const SEED_MODELS = ['gpt-3.5-turbo', 'gpt-4', 'gpt-4o-mini', 'claude-3-sonnet'];

await check('openai models.list and models.retrieve', async () => {
  const ids = [];
  for await (const m of openai.models.list()) {
    assert(m.object === 'model' && Number.isInteger(m.created) && isNonEmptyString(m.owned_by),
      `not an OpenAI model object: ${show(m)}`);
    ids.push(m.id);
  }
  assert(show(ids) === show(SEED_MODELS), `models.list = ${show(ids)}`);
  const m = await openai.models.retrieve('claude-3-sonnet');
  assert(m.id === 'claude-3-sonnet' && m.object === 'model' && m.owned_by === 'anthropic',
    `models.retrieve = ${show(m)}`);
  return `${show(ids)}`;
});

await check('openai models.retrieve of an unknown model → NotFoundError model_not_found', async () => {
  try {
    await openai.models.retrieve('gpt-5-nowhere');
  } catch (e) {
    assert(e instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${describeError(e)}`);
    assert(e.code === 'model_not_found', `code = ${show(e.code)}`);
    return `status ${e.status}, error ${show(e.error)}`;
  }
  throw new CheckFailed('the request succeeded');
});

// Embeddings: the seeds' upstream mixes openai with anthropic, which has no
// embeddings API; the gateway passes anthropic over, so openai serves every
// one. The SDK asks for base64 unless told otherwise and decodes it: both
// forms must give the same vectors.
await check('openai embeddings.create, float and base64', () =>
  twice(async () => {
    const input = ['hello world', 'second text'];
    const { data: floats, response } = await openai.embeddings
      .create({ model: 'text-embedding-3-small', input, encoding_format: 'float' })
      .withResponse();
    assert(floats.object === 'list' && floats.data.length === 2, `answer = ${show(floats)}`);
    assert(floats.data.every((d, i) => d.index === i && Array.isArray(d.embedding) && d.embedding.length > 0),
      `data = ${show(floats.data)}`);
    assert(isCount(floats.usage?.prompt_tokens) && floats.usage.prompt_tokens > 0, `usage = ${show(floats.usage)}`);
    const decoded = await openai.embeddings.create({ model: 'text-embedding-3-small', input });
    for (let i = 0; i < 2; ++i) {
      assert(show(Array.from(decoded.data[i].embedding)) === show(floats.data[i].embedding),
        `base64 vector ${i} ${show(decoded.data[i].embedding)} != float ${show(floats.data[i].embedding)}`);
    }
    return selectedProvider(response);
  }));

// ------------------------------------------------------------------ Anthropic SDK

await check('anthropic messages.create (withResponse)', () =>
  twice(async () => {
    const { data, response } = await anthropic.messages
      .create({
        model: 'claude-3-sonnet',
        max_tokens: 1020,
        system: 'You are an assistant',
        messages: [{ role: 'user', content: 'Hello, how are you?' }],
      })
      .withResponse();
    assert(response.status === 200, `HTTP ${response.status}`);
    assert(data.type === 'message' && data.role === 'assistant', `type/role = ${show(data.type)}/${show(data.role)}`);
    assert(isNonEmptyString(data.id), `id = ${show(data.id)}`);
    const block = data.content?.[0];
    assert(block?.type === 'text' && isNonEmptyString(block.text), `content = ${show(data.content)}`);
    assert(data.stop_reason === 'end_turn', `stop_reason = ${show(data.stop_reason)}`);
    checkAnthropicUsage(data.usage, 'response');
    return selectedProvider(response);
  }));

await check('anthropic messages.stream (MessageStream helper)', () =>
  twice(async () => {
    const stream = anthropic.messages.stream({
      model: 'claude-3-sonnet',
      max_tokens: 1020,
      messages: [{ role: 'user', content: 'Hello, how are you?' }],
    });
    let text = '';
    stream.on('text', (delta) => { text += delta; });
    const message = await stream.finalMessage(); // rejects when the stream ends early
    const { response } = await stream.withResponse();
    const provider = selectedProvider(response);
    assert(text.length > 0, 'no text events');
    const block = message.content?.[0];
    assert(block?.type === 'text' && block.text === text, `final content ${show(message.content)} != streamed ${show(text)}`);
    assert(message.stop_reason === 'end_turn', `stop_reason = ${show(message.stop_reason)}`);
    checkAnthropicUsage(message.usage, 'final message');
    return `${provider} (${show(text)})`;
  }));

await check('anthropic messages.create stream: true (raw events)', () =>
  twice(async () => {
    const { data: stream, response } = await anthropic.messages
      .create({
        model: 'claude-3-sonnet',
        max_tokens: 1020,
        messages: [{ role: 'user', content: 'Hello, how are you?' }],
        stream: true,
      })
      .withResponse();
    const provider = selectedProvider(response);
    const types = [];
    let text = '';
    let stopReason = null;
    let outputTokens = null;
    let inputTokens = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'message_start') inputTokens = event.message?.usage?.input_tokens;
      if (event.type === 'content_block_delta' && event.delta?.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') {
        stopReason = event.delta?.stop_reason ?? null;
        outputTokens = event.usage?.output_tokens ?? null;
      }
    }
    assert(types[0] === 'message_start', `first event ${show(types[0])} (events: ${show(types)})`);
    assert(types.at(-1) === 'message_stop', `the stream ended without message_stop (events: ${show(types)})`);
    assert(types.includes('content_block_start') && types.includes('content_block_stop'),
      `no content block start/stop (events: ${show(types)})`);
    assert(text.length > 0, 'no text_delta text');
    assert(stopReason === 'end_turn', `message_delta stop_reason = ${show(stopReason)}`);
    assert(isCount(inputTokens), `message_start usage.input_tokens = ${show(inputTokens)}`);
    assert(isCount(outputTokens) && outputTokens > 0, `message_delta usage.output_tokens = ${show(outputTokens)}`);
    return `${provider} (${types.length} events)`;
  }));

await check('anthropic messages tool use round trip', () =>
  twice(async (i) => {
    if (i === 1) await shiftRoundRobin();
    const messages = [{ role: 'user', content: WEATHER_QUESTION }];
    const { data: first, response } = await anthropic.messages
      .create({ model: 'claude-3-sonnet', max_tokens: 1020, messages, tools: [anthropicWeatherTool] })
      .withResponse();
    const provider1 = selectedProvider(response);
    assert(first.stop_reason === 'tool_use', `stop_reason = ${show(first.stop_reason)}`);
    const use = first.content?.find((b) => b.type === 'tool_use');
    assert(use, `no tool_use block: ${show(first.content)}`);
    assert(isNonEmptyString(use.id), `tool_use id = ${show(use.id)}`);
    assert(use.name === 'get_weather', `tool name = ${show(use.name)}`);
    assert(use.input && typeof use.input === 'object' && isNonEmptyString(use.input.location),
      `tool input = ${show(use.input)}`);

    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: WEATHER_RESULT }] });
    const { data: second, response: response2 } = await anthropic.messages
      .create({ model: 'claude-3-sonnet', max_tokens: 1020, messages, tools: [anthropicWeatherTool] })
      .withResponse();
    const provider2 = selectedProvider(response2);
    assert(second.stop_reason === 'end_turn', `after the tool result: stop_reason = ${show(second.stop_reason)}`);
    const block = second.content?.find((b) => b.type === 'text');
    assert(block && isNonEmptyString(block.text), `after the tool result: content = ${show(second.content)}`);
    return `${provider1}→${provider2}`;
  }));

await check('anthropic messages.stream with tool use', () =>
  twice(async () => {
    const stream = anthropic.messages.stream({
      model: 'claude-3-sonnet',
      max_tokens: 1020,
      messages: [{ role: 'user', content: WEATHER_QUESTION }],
      tools: [anthropicWeatherTool],
    });
    let json = '';
    stream.on('inputJson', (delta) => { json += delta; });
    const message = await stream.finalMessage();
    const { response } = await stream.withResponse();
    const provider = selectedProvider(response);
    assert(message.stop_reason === 'tool_use', `stop_reason = ${show(message.stop_reason)}`);
    const use = message.content?.find((b) => b.type === 'tool_use');
    assert(use?.name === 'get_weather' && isNonEmptyString(use.id), `content = ${show(message.content)}`);
    assert(use.input && isNonEmptyString(use.input.location), `tool input = ${show(use.input)}`);
    const streamed = parseJsonObject(json, 'the input_json_delta text');
    assert(streamed.location === use.input.location, `input_json_delta ${show(json)} != input ${show(use.input)}`);
    return provider;
  }));

if (anthropic.models?.list) {
  await check('anthropic models.list and models.retrieve', async () => {
    const ids = [];
    for await (const m of anthropic.models.list()) {
      assert(m.type === 'model' && isNonEmptyString(m.display_name) && isNonEmptyString(m.created_at),
        `not an Anthropic model object: ${show(m)}`);
      ids.push(m.id);
    }
    assert(show(ids) === show(SEED_MODELS), `models.list = ${show(ids)}`);
    const m = await anthropic.models.retrieve('claude-3-sonnet');
    assert(m.id === 'claude-3-sonnet' && m.type === 'model', `models.retrieve = ${show(m)}`);
    return `${show(ids)}`;
  });
} else {
  console.log('SKIP anthropic models.list: this Anthropic SDK has no Models API');
}

await check('anthropic wrong key → AuthenticationError', async () => {
  const wrong = new Anthropic({ baseURL: `${PROXY_URL}${PREFIX}`, apiKey: 'tg_wrong_key', ...CLIENT_OPTIONS });
  try {
    await wrong.messages.create({ model: 'claude-3-sonnet', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] });
  } catch (e) {
    assert(e instanceof Anthropic.AuthenticationError, `expected AuthenticationError, got ${describeError(e)}`);
    assert(e.status === 401, `status = ${e.status}`);
    // Anthropic's error body {"type": "error", "error": {"type", "message"}}, kept whole.
    assert(e.error?.type === 'error' && e.error?.error?.type === 'authentication_error' &&
      isNonEmptyString(e.error?.error?.message), `error body not in Anthropic's format: ${show(e.error)}`);
    return `status ${e.status}, error ${show(e.error)}`;
  }
  throw new CheckFailed('the request succeeded');
});

// ------------------------------------------------------------------ provider errors
// A provider's 400 reaches each SDK as its BadRequestError, whichever provider
// answered it. Needs the fake provider's control endpoint (TG_FAKE_URL).

const FAKE_URL = (process.env.TG_FAKE_URL ?? '').replace(/\/+$/, '');

async function injectProviderError(status) {
  const r = await fetch(`${FAKE_URL}/_fake/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ status, count: 1 }),
  });
  assert(r.ok, `POST ${FAKE_URL}/_fake/faults: HTTP ${r.status}`);
}

async function clearProviderErrors() {
  await fetch(`${FAKE_URL}/_fake/faults`, { method: 'DELETE' });
}

async function expectBadRequest(request, ErrorClass, checkBody) {
  await injectProviderError(400);
  try {
    await request();
  } catch (e) {
    assert(e instanceof ErrorClass, `expected BadRequestError, got ${describeError(e)}`);
    assert(e.status === 400, `status = ${e.status}`);
    checkBody(e.error);
    return e.headers?.get?.('x-selected-provider') ?? '?';
  } finally {
    await clearProviderErrors();
  }
  throw new CheckFailed('the request succeeded');
}

if (FAKE_URL) {
  await check('openai provider 400 → BadRequestError', () =>
    twice(() =>
      expectBadRequest(
        () => openai.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'Hi' }] }),
        OpenAI.BadRequestError,
        (error) => assert(isNonEmptyString(error?.message), `error body not in OpenAI's format: ${show(error)}`))));

  await check('anthropic provider 400 → BadRequestError', () =>
    twice(() =>
      expectBadRequest(
        () => anthropic.messages.create({ model: 'claude-3-sonnet', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }),
        Anthropic.BadRequestError,
        (error) => assert(error?.type === 'error' && isNonEmptyString(error?.error?.type) &&
          isNonEmptyString(error?.error?.message), `error body not in Anthropic's format: ${show(error)}`))));
} else {
  console.log('SKIP provider errors: TG_FAKE_URL not set');
}

// ------------------------------------------------------------------ summary

const failed = results.filter((r) => !r.ok);
console.log(`${results.length - failed.length}/${results.length} checks passed` +
  (failed.length ? `; failed: ${failed.map((r) => r.name).join('; ')}` : ''));
process.exit(failed.length === 0 ? 0 : 1);
