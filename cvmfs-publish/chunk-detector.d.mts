// Types of chunk-detector.mjs (plain JS for the compression workers).
export declare const DEFAULT_CHUNKING: Readonly<{ min: number; avg: number; max: number }>;
export declare function thresholdOf(avg: number): number;
export declare function mightChunk(size: number, params: { min: number }): boolean;
export declare function nextCut(data: Uint8Array, len: number, min: number, max: number, threshold: number): number;
export declare function cutPoints(data: Uint8Array, params: { min: number; avg: number; max: number }): number[];
