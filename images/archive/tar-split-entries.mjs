// The engine's tar-split metadata (`tar-split.json.gz`: one JSON entry per line, type 2 = raw
// header bytes in base64, type 1 = a file's name and size) read entry by entry, gunzipped as a
// stream (a layer's metadata can be tens of MB). Plain JS: the layer-digest worker loads it
// without tsx; engine-store.ts uses it through tar-split-entries.d.mts.
import fs from 'node:fs';
import zlib from 'node:zlib';

export async function* tarSplitEntries(file) {
  let rest = '';
  for await (const chunk of fs.createReadStream(file).pipe(zlib.createGunzip())) {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop();
    for (const line of lines) if (line) yield JSON.parse(line);
  }
  if (rest) yield JSON.parse(rest);
}
