"""Renders Jinja test cases with Python jinja2 configured the way transformers' apply_chat_template
configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, a
{% generation %} tag, tojson via json.dumps(ensure_ascii=False), raise_exception, strftime_now).

Usage: /usr/bin/python3 jinja_oracle.py cases.json
cases.json: {"now": <unix seconds>, "cases": [{"template": str, "context": object}, ...]}
A case with "sandbox": false renders in a plain jinja2 Environment (same settings), which allows
list.append: transformers' immutable sandbox forbids it, llama.cpp and edgelm allow it.
Prints a JSON array with one {"ok": bool, "output": str} or {"ok": false, "error": str,
"raised": str|null} per case ("raised" is the raise_exception message, if that was the cause).
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    pass


class GenerationTag(Extension):
    """transformers' AssistantTracker without the tracking: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment(now, sandbox=True):
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(now).strftime(format)

    env_class = ImmutableSandboxedEnvironment if sandbox else jinja2.Environment
    env = env_class(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    environments = {True: make_environment(request["now"]), False: make_environment(request["now"], sandbox=False)}
    compiled = {}
    results = []
    for case in request["cases"]:
        sandbox = case.get("sandbox", True)
        try:
            key = (sandbox, case["template"])
            if key not in compiled:  # many cases share one template; compiling dominates the run time
                compiled[key] = environments[sandbox].from_string(case["template"])
            output = compiled[key].render(**case["context"])
            results.append({"ok": True, "output": output})
        except RaisedByTemplate as e:
            results.append({"ok": False, "error": str(e), "raised": str(e)})
        except Exception as e:  # any template failure is a result to compare, not a crash
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}", "raised": None})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
