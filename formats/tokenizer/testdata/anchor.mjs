// Side-by-side check of qkv against Hugging Face tokenizers.js (npm
// @huggingface/tokenizers 0.2.0): run QKV_TOKENIZER_DUMP=/tmp/anchor go test
// -run DumpForAnchor ./formats/tokenizer, then node anchor.mjs from a folder
// where the package is installed. Prints whether the ids are identical on the
// benchmark text and the anchor's MB/s.
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
const dir = "/tmp/anchor";
const text = fs.readFileSync(dir + "/text.txt", "utf8");
const ours = JSON.parse(fs.readFileSync(dir + "/qkv-ids.json", "utf8"));
for (const name of ["gpt-2", "llama-spm", "bert-bge"]) {
  const tj = JSON.parse(fs.readFileSync(`${dir}/${name}.json`, "utf8")); for (const k of ["normalizer","pre_tokenizer","post_processor","decoder","truncation","padding"]) if (!(k in tj)) tj[k] = null;
  const tok = new Tokenizer(tj, {});
  let ids;
  const t0 = performance.now();
  const n = 3;
  for (let i = 0; i < n; i++) ids = tok.encode(text, { add_special_tokens: false }).ids;
  const dt = (performance.now() - t0) / n;
  const q = ours[name];
  let first = -1;
  for (let i = 0; i < Math.max(ids.length, q.length); i++) if (ids[i] !== q[i]) { first = i; break; }
  console.log(`${name}: tokenizers.js ${ids.length} ids, qkv ${q.length}; ${first < 0 ? "IDENTICAL" : "first difference at " + first + " js=" + ids.slice(first, first+5) + " qkv=" + q.slice(first, first+5)}; ${(text.length / 1e6 / (dt / 1000)).toFixed(2)} MB/s (${dt.toFixed(0)} ms)`);
}
