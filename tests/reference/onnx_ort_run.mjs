// ONNX Runtime (onnxruntime-node, CPU execution provider) as the oracle for edgelm's ONNX tests.
//   node onnx_ort_run.mjs NODE_DEPS_DIR MODEL.onnx OUT_DIR NAME:TYPE:DIMS:FILE...
// TYPE is float or int64, DIMS like 1x7, FILE the raw little-endian values. Every model output is
// written to OUT_DIR/<index>.bin (float32 or int32/int64 raw values, in graph output order), and
// its name and dims are printed one per line: "<index> <name> <d0>x<d1>...".
import { createRequire } from 'module';
import { readFileSync, writeFileSync } from 'fs';
import path from 'path';

const [nodeDeps, modelPath, outDir, ...specs] = process.argv.slice(2);
const require = createRequire(path.resolve(nodeDeps) + '/');
const ort = require('onnxruntime-node');

const feeds = {};
for (const spec of specs) {
  const [name, type, dims, file] = spec.split(':');
  const bytes = readFileSync(file);
  const shape = dims === '' ? [] : dims.split('x').map(Number);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const data = type === 'int64' ? new BigInt64Array(buffer) : new Float32Array(buffer);
  feeds[name] = new ort.Tensor(type === 'int64' ? 'int64' : 'float32', data, shape);
}
const session = await ort.InferenceSession.create(modelPath, {
  executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
const result = await session.run(feeds);
session.outputNames.forEach((name, i) => {
  const t = result[name];
  writeFileSync(path.join(outDir, `${i}.bin`), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  console.log(`${i} ${name} ${t.dims.join('x')}`);
});
