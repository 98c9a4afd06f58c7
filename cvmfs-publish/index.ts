/**
 * Public API of the repository capability (described in cvmfs-publish/README.md). Other capabilities
 * import from here only.
 */
export { initRepository, readHead, readRepoConfig, type InitOptions, type InitResult, type RepoConfig } from './repository.ts';
export { openTransaction, Transaction, type TransactionOptions, type CommitOptions, type CommitResult, type PutTreeResult } from './transaction.ts';
export type { Meta } from './entry.ts';
export { publishTree, link, removePath, type PublishOptions } from './publish.ts';
export { checkout, type CheckoutOptions, type CheckoutResult } from './checkout.ts';
export { openRepository, RepositoryReader, type ReaderOptions, type StatResult } from './reader.ts';
export { verifyRepository, type VerifyResult, type Problem } from './verify.ts';
export { garbageCollect, type GcResult } from './gc.ts';
export { abortTransaction, type AbortResult } from './abort.ts';
export { resignWhitelist, resignCronLine, type ResignResult } from './resign.ts';
export { setGarbageCollectable, type SetGcResult } from './gc-flag.ts';
export { serveRepository, type Server, type ServeOptions } from './serve.ts';
export { listTags, listRevisions, tagRevision, rollback, diffTags, type DiffEntry, type RevisionInfo } from './revisions.ts';
export { defaultKeysDir, keyFiles } from './keys.ts';
export type { Tag } from './history.ts';
