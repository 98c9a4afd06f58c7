// Read stage of a source tree (plain JS: the scan workers load it without tsx). Lists a directory
// with readdir + lstat into compact records: numbers in a Float64Array, names and symlink targets
// as '\0'-joined text (POSIX names cannot hold NUL), so a worker hands thousands of entries to the
// main thread in one message. Every check of the source happens here, with the messages a user
// sees: names must be UTF-8 without newlines, symlink targets too, files within the size limit.
// Someone else may write to the tree while it is read (a root publisher of a user's tree): each
// directory is opened without following a symlink (O_NOFOLLOW | O_DIRECTORY), must be the directory
// its parent listed (device + inode) and must sit in that parent (its `..`), and is read through its
// descriptor (/proc/self/fd/N), so a directory swapped for a symlink is refused, never followed.
// Files are only lstat'ed here; compress-worker.mjs opens them through their verified directory.
import fs from 'node:fs';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;
/** Directory descriptors can be read through procfs (Linux); elsewhere the path is used after the checks. */
const PROC_FD = fs.existsSync('/proc/self/fd');
/** How to fix a source that changed while it was read (also used by compress-worker.mjs). */
export const CHANGED_HINT = 'make sure nobody else can change the source tree while it is published (publish a copy only you can write to), then publish again';

export const FILE = 1;
export const DIR = 2;
export const SYMLINK = 3;
export const SPECIAL = 4;
/** closes the directory opened by the last DIR record still open */
export const END = 5;
/** numbers per record: kind, mode, uid, gid, mtimeMs, ctimeMs, size, dev, ino, nlink */
export const FIELDS = 10;

/** Bad input: what is wrong, the path at fault and how to fix it (the main thread throws it as a UsageError). */
export class ScanError extends Error {
  constructor(message, where, hint) {
    super(message);
    this.where = where;
    this.hint = hint;
  }
}

function checkText(name, where) {
  if (name.includes('\n') || name.includes('\0')) throw new ScanError('file name contains a newline or NUL', where, 'rename the file');
  return name;
}

function checkName(bytes, where) {
  const name = bytes.toString('utf8');
  if (!Buffer.from(name, 'utf8').equals(bytes)) {
    throw new ScanError('file name is not valid UTF-8', where, 'rename the file to a UTF-8 name (CernVM-FS catalogs store names as UTF-8 text)');
  }
  return checkText(name, where);
}

export class Listing {
  constructor(capacity = 1024) {
    this.nums = new Float64Array(capacity * FIELDS);
    this.count = 0;
    this.names = [];
    this.targets = [];
  }

  add(kind, st, name, target) {
    if ((this.count + 1) * FIELDS > this.nums.length) {
      const next = new Float64Array(this.nums.length * 2);
      next.set(this.nums);
      this.nums = next;
    }
    const o = this.count++ * FIELDS;
    const n = this.nums;
    n[o] = kind;
    if (st) {
      n[o + 1] = st.mode;
      n[o + 2] = st.uid;
      n[o + 3] = st.gid;
      n[o + 4] = st.mtimeMs;
      n[o + 5] = st.ctimeMs;
      n[o + 6] = st.size;
      n[o + 7] = st.dev;
      n[o + 8] = st.ino;
      n[o + 9] = st.nlink;
      this.names.push(name);
    }
    if (target !== undefined) this.targets.push(target);
  }

  /** The records so far as one message (the number array is a fresh buffer, for transfer), then empty. */
  take() {
    const out = { count: this.count, nums: this.nums.slice(0, this.count * FIELDS), names: this.names.join('\0'), targets: this.targets.join('\0') };
    this.count = 0;
    this.names = [];
    this.targets = [];
    return out;
  }
}

/**
 * Open directory `dir` for listing and check it is the one expected: `expect.dev/ino` as its parent
 * listed it, and (with `expect.pdev/pino`) still inside that parent. Returns its descriptor and
 * the path to read it through.
 */
function openListedDir(dir, expect) {
  let fd;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK);
  } catch (err) {
    if (err.code === 'ELOOP' || err.code === 'ENOTDIR') throw new ScanError('changed while being published (the directory was replaced by a symbolic link or another kind of file)', dir, CHANGED_HINT);
    throw new ScanError(`cannot read directory: ${err.message}`, dir, 'make the source readable');
  }
  const at = PROC_FD ? `/proc/self/fd/${fd}` : dir;
  try {
    if (expect) {
      const st = fs.fstatSync(fd);
      if (st.dev !== expect.dev || st.ino !== expect.ino) throw new ScanError('changed while being published (the directory was replaced by another one)', dir, CHANGED_HINT);
      if (expect.pdev !== undefined && PROC_FD) {
        const up = fs.statSync(`${at}/..`);
        if (up.dev !== expect.pdev || up.ino !== expect.pino) throw new ScanError('changed while being published (the directory was moved out of the tree)', dir, CHANGED_HINT);
      }
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { fd, at };
}

function readLinkAt(at, name, p) {
  try {
    return fs.readlinkSync(`${at}/${name}`, { encoding: 'buffer' });
  } catch (err) {
    throw new ScanError(`changed while being published (${err.code === 'EINVAL' ? 'no longer a symbolic link' : err.message})`, p, CHANGED_HINT);
  }
}

/** The names in a directory (read through `at`), checked as UTF-8. */
function readNames(dir, at) {
  try {
    let names = fs.readdirSync(at);
    // Names as text; only a directory with a replacement character (invalid UTF-8 bytes, or a real
    // U+FFFD) is read again as bytes to check each name exactly.
    if (names.some((n) => n.includes('\uFFFD'))) names = fs.readdirSync(at, { encoding: 'buffer' }).map((nb) => checkName(nb, `${dir}/${nb.toString('utf8')}`));
    return names;
  } catch (err) {
    if (err instanceof ScanError) throw err;
    throw new ScanError(`cannot read directory: ${err.message}`, dir, 'make the source readable');
  }
}

/**
 * Append the entries of `dir` to `listing`: with `deep`, each subdirectory's entries follow its DIR
 * record up to its END record; without, subdirectories are single DIR records. `full(listing)` is
 * called whenever `chunk` records have gathered (a worker posts them). `expect` is the directory's
 * identity as its parent listed it ({ dev, ino, pdev?, pino? }; see openListedDir).
 */
export function listDirectory(dir, deep, maxFileSize, listing, chunk = Infinity, full = () => undefined, expect = undefined) {
  // every entry is looked at while the directory is open; subdirectories are listed after it is closed
  const { fd, at } = openListedDir(dir, expect);
  let names;
  const stats = [];
  const targets = [];
  let self;
  try {
    self = fs.fstatSync(fd);
    names = readNames(dir, at);
    for (const name of names) {
      const p = `${dir}/${name}`;
      checkText(name, p);
      let st;
      try {
        st = fs.lstatSync(p);
      } catch (err) {
        throw new ScanError(`cannot read: ${err.message}`, p, 'the source changed during the scan, or is not readable: fix it and publish again');
      }
      stats.push(st);
      // the target read through the directory's descriptor: a swapped parent cannot show another link
      if (st.isSymbolicLink()) targets.push(checkName(readLinkAt(at, name, p), p));
    }
  } finally {
    fs.closeSync(fd);
  }
  let ti = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const st = stats[i];
    const p = `${dir}/${name}`;
    if (st.isFile()) {
      if (st.size > maxFileSize) throw new ScanError(`file is ${st.size} bytes, above the size limit of ${maxFileSize} bytes`, p, 'raise the limit with --max-file-size or leave the file out');
      listing.add(FILE, st, name);
    } else if (st.isDirectory()) {
      listing.add(DIR, st, name);
      if (deep) {
        listDirectory(p, true, maxFileSize, listing, chunk, full, { dev: st.dev, ino: st.ino, pdev: self.dev, pino: self.ino });
        listing.add(END);
      }
    } else if (st.isSymbolicLink()) {
      listing.add(SYMLINK, st, name, targets[ti++]);
    } else listing.add(SPECIAL, st, name);
    if (listing.count >= chunk) full(listing);
  }
}
