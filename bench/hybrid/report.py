"""The markdown table of bench/hybrid/run, from the files it left in its results folder.

    report.py RESULTS_DIR UPSTREAM_MODEL_NAME LARGE_SET_LABEL "LOAD BEFORE" "LOAD AFTER"
"""
import json
import os
import re
import sys

out, upstream_name, large_label, load_before, load_after = sys.argv[1:6]


def load(name):
    with open(os.path.join(out, name), encoding="utf-8") as f:
        return json.load(f)


def load_average(uptime):
    match = re.search(r"load average: (.*)$", uptime.strip())
    return match.group(1) if match else uptime.strip()


benchmarks = {b["name"]: b for b in load("redact.json")["benchmarks"]}
dense, prose = benchmarks["BM_RedactCorpus"], benchmarks["BM_RedactPlainProse"]
dense_us = benchmarks["BM_RedactCorpusOnePhoneRegion"]
chat = benchmarks["BM_ChatRequestRoundTrip"]
latency = load("latency.json")

print("### Redaction (default policy, one thread)\n")
print("| measure | value |")
print("|---|--:|")
for label, b in (("PII-dense text (tests/hybrid/data/pii_generated.jsonl texts)", dense),
                 ("the same, phone_regions [\"US\"] instead of 4 regions", dense_us),
                 ("plain prose (no personal data)", prose)):
    print(f"| throughput, {label}: {b['input_bytes'] / 1024:.0f} KiB, "
          f"{b['entities_per_kib']:.1f} entities/KiB | {b['bytes_per_second'] / 1e6:.2f} MB/s |")
print(f"| one chat request ({chat['request_bytes']:.0f} bytes, {chat['entities']:.0f} entities): "
      f"redact, p50 / p95 | {chat['redact_p50_us']:.0f} / {chat['redact_p95_us']:.0f} µs |")
print(f"| its answer ({chat['answer_bytes']:.0f} bytes): restore, p50 / p95 | "
      f"{chat['restore_p50_us']:.1f} / {chat['restore_p95_us']:.1f} µs |")
print(f"| added per request (redact + restore), p50 / p95 | "
      f"{chat['total_p50_us']:.0f} / {chat['total_p95_us']:.0f} µs |")

print("\n### Escalation vs threshold (stories260K, mean_logprob of 16 greedy tokens)\n")
print("| validation set | items | local accuracy | chosen threshold | escalation rate | "
      "routing accuracy | accuracy kept local |")
print("|---|--:|--:|--:|--:|--:|--:|")
pattern = re.compile(r"(\d+) samples, local accuracy ([\d.]+); threshold (\S+) on \S+: escalation "
                     r"rate ([\d.]+), routing accuracy ([\d.]+) \(objective\), accuracy of answers "
                     r"kept local ([\d.]+)")
for name, label in (("shipped", "tests/hybrid/data/calibration_stories.jsonl"),
                    ("large", large_label)):
    with open(os.path.join(out, name + ".calibrate.log"), encoding="utf-8") as f:
        m = pattern.search(f.read())
    if not m:
        raise SystemExit(f"report.py: no summary line in {name}.calibrate.log")
    items, accuracy, threshold, rate, routing, kept = m.groups()
    print(f"| {label} | {items} | {float(accuracy):.1%} | {float(threshold):.3f} | "
          f"{float(rate):.1%} | {float(routing):.1%} | {float(kept):.1%} |")
print("\nCurves: escalation.svg (docs/hybrid_escalation.svg); the CSVs beside it.")

n = latency["requests_per_route"]
print(f"\n### Chat latency end to end ({n} requests per route, max_tokens "
      f"{latency['max_tokens']}, ~{latency['request_bytes']} byte requests, one thread per server)\n")
print("| route | server | p50 ms | p95 ms | mean ms |")
print("|---|---|--:|--:|--:|")
rows = (("plain (no router)", "edgelm serve, stories260K", "plain"),
        ("local", "serve --hybrid, threshold -1e9", "local"),
        ("escalated", "serve --hybrid, threshold 1 → upstream", "escalated"),
        ("cache hit", "same questions from other people", "cache"),
        ("upstream direct", f"edgelm serve, {upstream_name}, redacted request", "upstream_direct"))
for route, server, key in rows:
    s = latency[key]
    print(f"| {route} | {server} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['mean_ms']:.2f} |")
lp, ed = latency["local_minus_plain_ms"], latency["escalated_minus_direct_ms"]
print(f"\nRouter overhead on a local answer (paired, hybrid local − plain): p50 {lp['p50']:.2f} ms, "
      f"p95 {lp['p95']:.2f} ms; completion lengths differing between the two: "
      f"{latency['completion_token_mismatches']} of {n}.")
print(f"Escalation over asking the upstream directly with the same redacted messages (paired, "
      f"escalated − direct: redaction, the local answer, audit, cache, restoration): p50 "
      f"{ed['p50']:.2f} ms, p95 {ed['p95']:.2f} ms. The upstream counted the same prompt tokens "
      f"for each escalated request as for its redacted twin, and none on the local and cache "
      f"passes.")
print(f"\nLoad average (1/5/15 min) before: {load_average(load_before)}; after: "
      f"{load_average(load_after)}.")
