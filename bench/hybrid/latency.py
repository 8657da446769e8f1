"""End-to-end latency of chat completions through the hybrid router, route by route, against
servers bench/hybrid/run started on loopback (standard library only):

  local      `edgelm serve --hybrid` whose threshold keeps every answer local, interleaved
             request by request with plain `edgelm serve` on the same model (the router's
             overhead: redaction, confidence, policy, restoration);
  escalated  `edgelm serve --hybrid` whose threshold escalates every answer to the upstream,
             interleaved with the same requests, redacted by `edgelm redact`, sent straight to
             the upstream: the same prompt the router sends, so the difference is what escalation
             adds to the upstream's own time (redaction, the local answer, audit, restoration);
             the upstream's /metrics must count as many prompt tokens for the escalated request
             as for the redacted one;
  cache      the escalated requests again, asked by other people (other names, emails, phones):
             the redacted requests are the same, so they are answered from the cache.

    latency.py --plain URL --local URL --escalate URL --upstream URL --edgelm BIN [-n N]
               [--max-tokens M] [--out FILE.json]

Each request is a system prompt and a ~200-byte user message with a name, an email and a phone
number; the N questions differ, so the first escalated pass cannot hit the cache. Prints and
writes the summary as JSON; exits 1 when a server answered with an error, a route other than the
one asked for, or the upstream's prompt-token count disagrees (something other than the redacted
request went upstream, or anything went upstream on the local and cache passes).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PEOPLE = [("Maria", "Garcia"), ("John", "Smith"), ("Aisha", "Khan"), ("David", "Miller"),
          ("Emma", "Johnson"), ("Lucas", "Martin"), ("Sofia", "Rossi"), ("James", "Brown")]
ANIMALS = ["cat", "dog", "rabbit", "bird", "fox", "bear", "duck", "frog"]
THINGS = ["red ball", "old key", "small boat", "blue kite", "shiny coin", "lost hat"]


def chat_request(i, person):
    first, last = PEOPLE[person % len(PEOPLE)]
    animal = ANIMALS[i % len(ANIMALS)]
    thing = THINGS[(i // len(ANIMALS)) % len(THINGS)]
    place = ["park", "garden", "forest"][(i // (len(ANIMALS) * len(THINGS))) % 3]
    question = (f"Could you tell me a short story about a {animal} who finds a {thing} in the "
                f"{place}?")
    user = (f"Hello, this is {first} {last}. {question} Please send it to "
            f"{first.lower()}.{last.lower()}@example.com or text me on "
            f"+1 415 867 53{person % 100:02d}.")
    return [{"role": "system", "content": "You are a helpful assistant. Keep answers short."},
            {"role": "user", "content": user}]


def redacted(edgelm, messages):
    """The messages as the router sends them upstream: redacted with one vault per request."""
    with tempfile.TemporaryDirectory() as folder:
        vault = os.path.join(folder, "vault.json")
        out = []
        for m in messages:
            text = subprocess.run([edgelm, "redact", "--vault", vault], input=m["content"],
                                  capture_output=True, text=True, check=True).stdout
            out.append({"role": m["role"], "content": text})
    return out


def post(url, model, messages, max_tokens):
    body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens,
                       "temperature": 0}).encode()
    request = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"latency.py: {url} answered {e.code}: {e.read()[:500]!r}")
    return (time.perf_counter() - start) * 1000.0, answer


def prompt_tokens_total(url):
    """The server's edgelm_prompt_tokens_total (GET /metrics)."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    match = re.search(r"^edgelm_prompt_tokens_total (\d+)$", text, re.MULTILINE)
    if not match:
        raise SystemExit(f"latency.py: {url}/metrics has no edgelm_prompt_tokens_total")
    return int(match.group(1))


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values):
    return {"n": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
            "mean_ms": sum(values) / len(values)}


def main():
    parser = argparse.ArgumentParser()
    for name in ("plain", "local", "escalate", "upstream"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--edgelm", required=True)
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--local-model", default="local")
    parser.add_argument("--upstream-model", default="big")
    parser.add_argument("--out")
    args = parser.parse_args()
    local_model, n, max_tokens = args.local_model, args.n, args.max_tokens
    distinct = len(ANIMALS) * len(THINGS) * 3
    if not 1 <= n < distinct:
        parser.error(f"-n must be in [1, {distinct - 1}] (distinct questions, one for warm-up)")

    problems = []

    def route_of(answer, expected, what):
        route = answer.get("edgelm", {}).get("route")
        if route != expected:
            problems.append(f"{what}: route {route!r} ({answer.get('edgelm', {}).get('reason')}),"
                            f" expected {expected!r}")
        return route

    def upstream_prompt_tokens():
        return prompt_tokens_total(args.upstream)

    # Warm-up (not measured): a question outside the measured set, once per server.
    warm = chat_request(distinct - 1, 0)
    for url, model in ((args.plain, local_model), (args.local, local_model),
                       (args.escalate, local_model), (args.upstream, args.upstream_model)):
        for _ in range(2):
            post(url, model, warm, max_tokens)

    plain, local, paired_local, token_mismatch = [], [], [], 0
    before = upstream_prompt_tokens()
    for i in range(n):
        messages = chat_request(i, i)
        # Alternate who goes first so drift and cache effects hit both alike.
        if i % 2 == 0:
            t_plain, a_plain = post(args.plain, local_model, messages, max_tokens)
            t_local, a_local = post(args.local, local_model, messages, max_tokens)
        else:
            t_local, a_local = post(args.local, local_model, messages, max_tokens)
            t_plain, a_plain = post(args.plain, local_model, messages, max_tokens)
        route_of(a_local, "local", f"local request {i}")
        if a_plain["usage"]["completion_tokens"] != a_local["usage"]["completion_tokens"]:
            token_mismatch += 1
        plain.append(t_plain)
        local.append(t_local)
        paired_local.append(t_local - t_plain)
    if upstream_prompt_tokens() != before:
        problems.append("the all-local pass sent something upstream")

    # The upstream reuses the longest prompt prefix it still holds, so a request right after the
    # same prompt would be cheaper: each request follows a different question (same template),
    # as in E0 E1 D0 E2 D1 ... E(n-1) D(n-2) warm D(n-1).
    escalated, sent_upstream, anonymous = [], [], []
    direct, direct_prompt_tokens = [], []

    def ask_directly(i):
        t, answer = post(args.upstream, args.upstream_model, anonymous[i], max_tokens)
        direct.append(t)
        direct_prompt_tokens.append(answer["usage"]["prompt_tokens"])

    for i in range(n):
        messages = chat_request(i, i)
        anonymous.append(redacted(args.edgelm, messages))
        before = upstream_prompt_tokens()
        t_escalated, a_escalated = post(args.escalate, local_model, messages, max_tokens)
        sent_upstream.append(upstream_prompt_tokens() - before)
        escalated.append(t_escalated)
        route_of(a_escalated, "upstream", f"escalated request {i}")
        if i > 0:
            ask_directly(i - 1)
    post(args.upstream, args.upstream_model, warm, max_tokens)
    ask_directly(n - 1)
    paired_escalated = [e - d for e, d in zip(escalated, direct)]
    # The upstream's own count of prompt tokens: the router must have sent exactly as many as the
    # redacted request has (answers cannot be compared: a random-weight model's greedy choice
    # flips with how much of the prompt came from the prefix cache).
    for i, (sent, expected) in enumerate(zip(sent_upstream, direct_prompt_tokens)):
        if sent != expected:
            problems.append(f"escalated request {i}: the upstream got {sent} prompt tokens, the "
                            f"redacted request has {expected}")

    cached = []
    before = upstream_prompt_tokens()
    for i in range(n):
        t_cached, a_cached = post(args.escalate, local_model, chat_request(i, i + 1), max_tokens)
        route_of(a_cached, "cache", f"cache request {i}")
        cached.append(t_cached)
    if upstream_prompt_tokens() != before:
        problems.append("the cache pass sent something upstream")

    result = {
        "requests_per_route": n,
        "max_tokens": max_tokens,
        "request_bytes": len(json.dumps(chat_request(0, 0))),
        "plain": summary(plain),
        "local": summary(local),
        "escalated": summary(escalated),
        "cache": summary(cached),
        "upstream_direct": summary(direct),
        "local_minus_plain_ms": {"p50": percentile(paired_local, 50),
                                 "p95": percentile(paired_local, 95)},
        "escalated_minus_direct_ms": {"p50": percentile(paired_escalated, 50),
                                      "p95": percentile(paired_escalated, 95)},
        "completion_token_mismatches": token_mismatch,
        "problems": problems,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if problems:
        print("latency.py: " + "; ".join(problems[:5]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
