"""Writes tests/template/cases/conversations.json: the conversations every chat template is
rendered with in template_oracle_test (system/user/assistant turns, unicode, quotes, empty and
padded content, reasoning history, tools in the context but no tool calls).

Usage: /usr/bin/python3 tests/reference/template_make_conversations.py   (from the repository root)
"""
import json
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]
convs = [
 {"name": "single_user", "messages": [{"role": "user", "content": "Hello!"}]},
 {"name": "system_multi_turn", "messages": [
   {"role": "system", "content": "You are a helpful assistant."},
   {"role": "user", "content": "What is 2+2?"},
   {"role": "assistant", "content": "2+2 equals 4."},
   {"role": "user", "content": "And 3+3?"}]},
 {"name": "no_system_multi_turn", "messages": [
   {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
   {"role": "user", "content": "Tell me a joke."}, {"role": "assistant", "content": "Why did the chicken cross the road?"}]},
 {"name": "unicode_quotes", "messages": [
   {"role": "system", "content": "Réponds en français. «Guillemets» — \"double\" 'single'"},
   {"role": "user", "content": "Ünïcödé 😀 <tags> & \\ backslash {{ not a template }} {% raw %}"},
   {"role": "assistant", "content": "日本語の応答\n改行あり\ttab"},
   {"role": "user", "content": "emoji 👩‍👩‍👧 and zero-width\u200bspace"}]},
 {"name": "empty_content", "messages": [
   {"role": "user", "content": ""}, {"role": "assistant", "content": ""}, {"role": "user", "content": "   "}]},
 {"name": "padded_content", "messages": [
   {"role": "system", "content": "  \n system with padding \n "},
   {"role": "user", "content": "\n\n  question?  \n"}]},
 {"name": "reasoning_history", "messages": [
   {"role": "user", "content": "Solve x+1=2"},
   {"role": "assistant", "content": "<think>\nSubtract 1 from both sides.\n</think>\n\nx = 1"},
   {"role": "user", "content": "Thanks"}]},
 {"name": "system_only", "messages": [{"role": "system", "content": "Only a system prompt."}]},
 {"name": "with_tools", "messages": [
   {"role": "system", "content": "You can call tools."},
   {"role": "user", "content": "Weather in Paris?"}], "extra": {"tools": TOOLS}},
 {"name": "thinking_off", "messages": [{"role": "user", "content": "Quick answer please"}], "extra": {"enable_thinking": False}},
]
json.dump({"bos_token": "<s>", "eos_token": "</s>", "conversations": convs},
          open("tests/template/cases/conversations.json", "w"), ensure_ascii=False, indent=1)
