// The server's OpenAI API: the model list and streamed chat completions (SSE over fetch).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(apiKey) {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

async function errorOf(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error?.message) message = `${res.status}: ${body.error.message}`;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(res.status, message);
}

export async function listModels(apiKey) {
  const res = await fetch("/v1/models", { headers: headers(apiKey) });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()).data.map((m) => m.id);
}

// Streams one chat completion. onDelta({content, reasoning}) per chunk; resolves with the
// usage and finish reason. Aborting `signal` closes the connection, which cancels the
// request on the server.
export async function streamChat({ apiKey, body, signal, onDelta }) {
  const res = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(apiKey),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let usage = null;
  let finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return { usage, finish };
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk.error.message);
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finish = choice.finish_reason;
        const d = choice.delta ?? {};
        if (d.content || d.reasoning_content) onDelta({ content: d.content ?? "", reasoning: d.reasoning_content ?? "" });
      }
    }
  }
  return { usage, finish };
}
