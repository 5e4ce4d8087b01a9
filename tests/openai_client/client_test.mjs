// forge serve through the official openai client: a plain and a streamed chat completion, the models
// list, a legacy completion, logprobs, a json_schema reply that validates, forced tool calls (whole and
// streamed) whose arguments match their schema, and an error surfacing as the client's APIError. Greedy sampling makes
// the plain and streamed replies comparable.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.FORGE_URL, apiKey: 'not-checked', timeout: 120_000, maxRetries: 0 });
const model = 'stories260K';
const messages = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me a story about a cat.' },
];
let passed = 0;
async function check(name, body) {
  await body();
  passed += 1;
  console.log(`ok - ${name}`);
}

function usageAddsUp(usage, maxTokens) {
  assert.ok(usage.prompt_tokens > 0, 'prompt_tokens');
  assert.ok(usage.completion_tokens > 0 && usage.completion_tokens <= maxTokens, 'completion_tokens');
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

let plainText;
await check('plain chat completion', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 48, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  plainText = r.choices[0].message.content;
  assert.ok(plainText.length > 0, 'content is empty');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
  usageAddsUp(r.usage, 48);
  if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 48);
  assert.ok(r.timings.decode_tokens_per_second > 0, 'forge timings');
});

await check('streamed chat completion', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 48, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let contentChunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta?.content) {
        text += choice.delta.content;
        contentChunks += 1;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(contentChunks > 1, `expected several chunks, got ${contentChunks}`);
  assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  assert.ok(usage, 'no usage chunk');
  usageAddsUp(usage, 48);
  assert.ok(contentChunks <= usage.completion_tokens, 'at most one chunk per token');
  assert.equal(text, plainText, 'greedy: streamed text equals the plain reply');
});

await check('models list', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
});

await check('legacy completion', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.length > 0);
  usageAddsUp(r.usage, 16);
});

await check('logprobs with alternatives, in the shape the client types', async () => {
  const r = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((e) => e.token).join(''), r.choices[0].message.content);
  for (const e of content) {
    assert.ok(e.logprob <= 0, `logprob ${e.logprob}`);
    assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token, 'greedy: the chosen token is the most likely');
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob);
  }
});

await check('a json_schema reply parses and validates, with the 512-token vocabulary too', async () => {
  const schema = {
    type: 'object',
    properties: {
      title: { type: 'string', maxLength: 20 },
      year: { type: 'integer', minimum: 0 },
      tags: { type: 'array', items: { enum: ['cat', 'dog', 'sun'] }, minItems: 1, maxItems: 3 },
      happy: { type: 'boolean' },
    },
    required: ['title', 'year', 'tags', 'happy'],
    additionalProperties: false,
  };
  for (const temperature of [0, 1]) {
    const r = await client.chat.completions.create({
      model, messages, max_tokens: 150, temperature, seed: 5,
      response_format: { type: 'json_schema', json_schema: { name: 'story', strict: true, schema } },
    });
    assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content);
    const v = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(v).sort(), ['happy', 'tags', 'title', 'year']);
    assert.equal(typeof v.title, 'string');
    assert.ok([...v.title].length <= 20, v.title);
    assert.ok(Number.isInteger(v.year) && v.year >= 0, String(v.year));
    assert.ok(Array.isArray(v.tags) && v.tags.length >= 1 && v.tags.length <= 3, JSON.stringify(v.tags));
    for (const t of v.tags) assert.ok(['cat', 'dog', 'sun'].includes(t), t);
    assert.equal(typeof v.happy, 'boolean');
  }
  // A keyword the schema compiler does not take is refused up front, naming it.
  await assert.rejects(client.chat.completions.create({
    model, messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: { '^a': {} } } } },
  }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'response_format.json_schema.schema');
    assert.match(e.message, /patternProperties/);
    return true;
  });
});

await check('a forced tool call returns valid tool_calls, whole and streamed, and the conversation goes on', async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 24 }, unit: { enum: ['C', 'F'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  }];
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const valid = (call) => {
    assert.match(call.id, /^call_/);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
    assert.equal(typeof args.city, 'string');
    assert.ok([...args.city].length <= 24, args.city);
    assert.ok(['C', 'F'].includes(args.unit), args.unit);
  };
  for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
    const r = await client.chat.completions.create({ model, messages: ask, tools, tool_choice, max_tokens: 120, temperature: 0 });
    const message = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(message.content, null);
    assert.ok(message.tool_calls.length >= 1);
    message.tool_calls.forEach(valid);
    // The reply goes back as the assistant's turn, with each call's result.
    const next = await client.chat.completions.create({
      model, max_tokens: 8, temperature: 0, tools,
      messages: [...ask, message, ...message.tool_calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: '18 C, sunny' }))],
    });
    assert.equal(typeof next.choices[0].message.content, 'string');
  }
  const stream = await client.chat.completions.create({
    model, messages: ask, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 120, temperature: 1, seed: 9, stream: true,
  });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      for (const d of choice.delta?.tool_calls ?? []) {
        calls[d.index] ??= { id: d.id, type: d.type, function: { name: '', arguments: '' } };
        calls[d.index].function.name += d.function?.name ?? '';
        calls[d.index].function.arguments += d.function?.arguments ?? '';
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1, 'parallel_tool_calls: false');
  calls.forEach(valid);
  const none = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: 'none', max_tokens: 8, temperature: 0 });
  assert.equal(typeof none.choices[0].message.content, 'string');
  assert.equal(none.choices[0].message.tool_calls, undefined);
});

await check('a bad request is an APIError naming the field', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages: [] }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, 'messages');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
});

console.log(`openai client: ${passed} checks passed`);
