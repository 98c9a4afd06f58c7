// Types of zlib-exact.mjs (deflate byte-identical to stock zlib level 6, for X and M objects).
export declare function deflateStockZlib(content: Uint8Array): Buffer;
