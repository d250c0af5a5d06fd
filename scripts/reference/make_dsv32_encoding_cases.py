"""Cases for dsv3's DeepSeek-V3.2 prompt encoding and DSML tool-call parsing, produced by
DeepSeek's own Python encoder (encoding/encoding_dsv32.py, published with the V3.2 weights;
not part of this repository).

usage: DSV32_ENCODING_DIR=<folder holding encoding_dsv32.py> /usr/bin/python3 make_dsv32_encoding_cases.py OUT.jsonl
One JSON object a line:
  {"kind": "encode", "name", "thinking_mode": "chat"|"thinking", "messages": [...], "text"}
      text = encode_messages(messages, thinking_mode) (drop_thinking and the BOS as defaults)
  {"kind": "parse", "name", "thinking_mode", "text", "message"}
      message = parse_message_from_completion_text(text, thinking_mode)
"""
import json, os, sys
sys.path.insert(0, os.environ["DSV32_ENCODING_DIR"])
import encoding_dsv32 as E

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city (°C).",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Zürich\""},
        "days": {"type": "integer"}, "units": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Web search.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                    "filters": {"type": "object"}, "limit": {"type": "number"}}}}}


def call(i, name, args):
    return {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}


CALLS = [call(1, "get_weather", {"city": "Zürich", "days": 3, "units": "c"}),
         call(2, "search", {"query": "line one\nline \"two\"", "filters": {"lang": ["de", "en"], "safe": True},
                            "limit": 2.5, "extra": None})]

ENCODE = [
    ("one_user_chat", "chat", [{"role": "user", "content": "Hello!"}]),
    ("one_user_thinking", "thinking", [{"role": "user", "content": "Hello!"}]),
    ("system_user", "chat", [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"}]),
    ("multi_turn_chat", "chat", [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello, how can I help?"},
                                 {"role": "user", "content": "Tell me a joke\nabout <tags> & \"quotes\"."}]),
    ("multi_turn_thinking_drops_old_reasoning", "thinking",
     [{"role": "user", "content": "First?"},
      {"role": "assistant", "content": "One.", "reasoning_content": "They ask for the first."},
      {"role": "user", "content": "Second?"}]),
    ("tools_thinking_full_round", "thinking",
     [{"role": "system", "content": "Use tools when useful.", "tools": [WEATHER, SEARCH]},
      {"role": "user", "content": "Weather in Zürich, and search news."},
      {"role": "assistant", "content": "", "reasoning_content": "I need two tools.", "tool_calls": CALLS},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
      {"role": "tool", "tool_call_id": "call_2", "content": "No news."}]),
    ("tools_chat_full_round", "chat",
     [{"role": "system", "content": "", "tools": [WEATHER, SEARCH]},
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": "Let me check.", "tool_calls": CALLS[:1]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
      {"role": "assistant", "content": "It is sunny."},
      {"role": "user", "content": "Thanks"}]),
    ("tools_thinking_after_results_answer", "thinking",
     [{"role": "system", "content": "sys", "tools": [WEATHER]},
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": None, "reasoning_content": "call it", "tool_calls": CALLS[:1]},
      {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
      {"role": "assistant", "content": "Rain today.", "reasoning_content": "It rains."}]),
    ("developer_with_tools_and_format", "thinking",
     [{"role": "developer", "content": "Give JSON.", "tools": [SEARCH],
       "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}}]),
    ("system_response_format", "chat",
     [{"role": "system", "content": "S", "response_format": {"type": "json_object"}}, {"role": "user", "content": "u"}]),
]

PARSE_MESSAGES = [
    ("plain_chat", "chat", {"role": "assistant", "content": "Just text, with \"quotes\"."}),
    ("reasoning_and_text", "thinking", {"role": "assistant", "content": "Answer.", "reasoning_content": "Think\nhard."}),
    ("tool_calls_thinking", "thinking", {"role": "assistant", "content": "", "reasoning_content": "need tools",
                                         "tool_calls": CALLS}),
    ("tool_calls_chat_with_text", "chat", {"role": "assistant", "content": "Checking.", "tool_calls": CALLS[1:]}),
]


def main(out):
    lines = []
    for name, mode, msgs in ENCODE:
        lines.append({"kind": "encode", "name": name, "thinking_mode": mode, "messages": msgs,
                      "text": E.encode_messages(msgs, thinking_mode=mode)})
    for name, mode, msg in PARSE_MESSAGES:
        # the completion text the model writes for this message: render it as the turn after a user
        text = E.render_message(1, [{"role": "user", "content": "q"}, msg], thinking_mode=mode)
        lines.append({"kind": "parse", "name": name, "thinking_mode": mode, "text": text,
                      "message": E.parse_message_from_completion_text(text, thinking_mode=mode)})
    with open(out, "w") as f:
        for l in lines:
            f.write(json.dumps(l, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
