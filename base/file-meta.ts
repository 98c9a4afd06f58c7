/**
 * The POSIX metadata every in-memory file entry carries, in one place: the image tree
 * (images/layer/tree.ts `Inode`) and the CernVM-FS transaction tree (cvmfs-publish/entry.ts `Entry`)
 * both extend it with their own entry type and the rest of what they track.
 */
export interface FileMeta {
  /** st_mode bits: permissions and set-id bits, plus the file-type bits where the format keeps them (CernVM-FS catalogs do) */
  mode: number;
  /** owner user id */
  uid: number;
  /** owner group id */
  gid: number;
  /** modification time, seconds since the epoch */
  mtime: number;
  /** size in bytes as the format records it: a file's length (a symlink's target length and 4096 for directories in CernVM-FS) */
  size: number;
}
