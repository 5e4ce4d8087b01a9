// forge serve through the official openai client: a plain and a streamed chat completion, the models
// list, a legacy completion, logprobs, a json_schema reply that validates, and an error surfacing as the
// client's APIError. Greedy sampling makes
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
    model, messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: 'a+' } } },
  }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'response_format.json_schema.schema');
    assert.match(e.message, /pattern/);
    return true;
  });
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
