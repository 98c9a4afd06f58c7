// Child process of crash.test.ts: one publish, progress lines on stderr (the parent kills it mid-way).
import { publishTree } from '../../cvmfs-publish/index.ts';

const [repo, src, at] = process.argv.slice(2);
await publishTree(repo, src, at, { onProgress: (m) => process.stderr.write(`${m}\n`) });
process.stderr.write('child: done\n');
