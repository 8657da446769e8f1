// Renders Jinja test cases with @huggingface/jinja (the engine transformers.js uses).
// Usage: node jinja_oracle.mjs <node_deps dir> cases.json   (same format as jinja_oracle.py;
// "raised" is always null here: the package's raise_exception throws a plain Error).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(path.join(path.resolve(process.argv[2]), "index.js"));
const { Template } = require("@huggingface/jinja");

const request = JSON.parse(readFileSync(process.argv[3], "utf8"));

// The package's strftime_now reads `new Date()`; pin it to the clock the other engines use.
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(request.now * 1000);
    else super(...args);
  }
  static now() {
    return request.now * 1000;
  }
};

const results = request.cases.map((c) => {
  try {
    return { ok: true, output: new Template(c.template).render(c.context) };
  } catch (e) {
    return { ok: false, error: String(e && e.message), raised: null };
  }
});
process.stdout.write(JSON.stringify(results));
