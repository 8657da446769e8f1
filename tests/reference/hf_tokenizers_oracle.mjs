// Oracle for tokenizer.json support: Hugging Face's own JS implementation (@huggingface/tokenizers)
// encodes each case. Usage: node hf_tokenizers_oracle.mjs NODE_MODULES tokenizer.json config.json
// cases.json > ids.json   (cases: array of strings; output: array of id arrays, no special tokens)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [modules, tokenizerPath, configPath, casesPath] = process.argv.slice(2);
const require = createRequire(modules + "/");
const { Tokenizer } = require("@huggingface/tokenizers");
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")),
                                JSON.parse(readFileSync(configPath, "utf8")));
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
const ids = cases.map((text) => Array.from(tokenizer.encode(text, { add_special_tokens: false }).ids));
process.stdout.write(JSON.stringify(ids));
