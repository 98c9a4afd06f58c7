/** One line of an engine's tar-split metadata (vbatts/tar-split storage.Entry). */
export interface TarSplitEntry {
  /** 1 = file (name, size; payload is a CRC64), 2 = segment (payload: raw bytes, base64) */
  type: number;
  name?: string;
  /** base64 of a non-UTF-8 name */
  name_raw?: string;
  size?: number;
  payload?: string | null;
}

export function tarSplitEntries(file: string): AsyncGenerator<TarSplitEntry>;
