// Runs one TFJS graph model in the real TensorFlow.js runtime (pure-JS CPU backend) on a raw float32 input.
// Driven by bench/tfjs_reference.py, which makes the input and packs the outputs into datasets/tfjs_reference.npz.
//
//   TFJS_DIR=/tmp/tfjsref node bench/tfjs_reference.mjs MODEL.json INPUT.f32 N,H,W,C OUT_PREFIX [NODE,NODE...]
//
// TFJS_DIR is a folder where `npm install @tensorflow/tfjs` was run (no native binary needed).
// The optional last argument names inner nodes to return as well (e.g. logits before a softmax).
// Writes OUT_PREFIX.json (output names and shapes, in the order of the signature) and OUT_PREFIX.f32 (the
// outputs' float32 values, concatenated in that order).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(join(process.env.TFJS_DIR || process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs');

const [modelPath, inputPath, shapeArg, outPrefix, extraArg] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(modelPath, 'utf8'));
const weightSpecs = [];
const buffers = [];
for (const group of spec.weightsManifest) {
  weightSpecs.push(...group.weights);
  for (const p of group.paths) buffers.push(readFileSync(join(dirname(modelPath), p)));
}
const all = Buffer.concat(buffers);
const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);

await tf.setBackend('cpu');
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: spec.modelTopology, weightSpecs, weightData, format: spec.format,
  generatedBy: spec.generatedBy, convertedBy: spec.convertedBy, signature: spec.signature,
  userDefinedMetadata: spec.userDefinedMetadata,
}));
const shape = shapeArg.split(',').map(Number);
const raw = readFileSync(inputPath);
const input = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), shape, 'float32');
const names = model.outputs.map((o) => o.name.split(':')[0]).concat(extraArg ? extraArg.split(',') : []);
let outs = model.execute(input, names);
if (!Array.isArray(outs)) outs = [outs];
const meta = { backend: tf.getBackend(), tfjs: tf.version.tfjs, outputs: [] };
const chunks = [];
for (let i = 0; i < outs.length; i++) {
  meta.outputs.push({ name: names[i], shape: outs[i].shape });
  chunks.push(Buffer.from((await outs[i].data()).buffer));
}
writeFileSync(`${outPrefix}.json`, JSON.stringify(meta));
writeFileSync(`${outPrefix}.f32`, Buffer.concat(chunks));
