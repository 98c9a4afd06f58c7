// The error classes live in the shared base (base/errors.ts); this path stays until every importer moves.
export * from '../../base/errors.ts';
