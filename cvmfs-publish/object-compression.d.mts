import type { Transform } from 'node:stream';

export declare const PROBE_BYTES: number;
export declare const TAIL_PROBE_LIMIT: number;
export declare function isIncompressible(content: Uint8Array): boolean;
export declare function storedZlib(content: Buffer): Buffer;
export declare class StoredZlibStream extends Transform {}
export declare function deflateObject(content: Buffer): Buffer;
export declare function createObjectDeflate(head: Uint8Array): Transform;
export declare function deflateChunked(content: Buffer): Promise<Buffer>;
export declare function adler32(bytes: Uint8Array, state?: number): number;
export declare function trailer(adler: number): Buffer;
export declare function storedBlocks(piece: Uint8Array, last: boolean): Buffer;
