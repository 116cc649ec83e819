// A GGUF file's header (metadata key/values) and tensor table, read with @huggingface/gguf from
// any ByteSource: a Node file, a browser File/Blob or OPFS file, or a download in the cache. The
// package reads through `fetch` with Range requests, so we hand it a fetch that answers those
// ranges from the ByteSource: one code path in Node and the browser, and the package's
// `allowLocalFile` (Node only) is not needed. Every tensor is checked against the file size before
// anything is read, so a truncated download fails with a message that says so.

import { gguf, type GGUFParseOutput, type MetadataValue } from '@huggingface/gguf';
import type { ByteSource } from '../../io/byte-source';
import { formatOfType, ggmlTypeName, GgufTypeError, type BlockFormat } from '../../gpu/ggml';

export class GgufError extends Error {
  override name = 'GgufError';
}

export interface GgufTensor {
  name: string;
  /** GGML type id and its name (e.g. 12, "Q4_K"). */
  type: number;
  typeName: string;
  /** ggml dims, fastest first (ne0 = the input dimension of a weight). */
  dims: number[];
  /** The same dims in Hugging Face order ([out, in] for a weight). */
  shape: number[];
  /** Absolute byte range in the file (null when the type is one we cannot decode: its size is unknown). */
  begin: number;
  end: number | null;
}

export interface GgufHeader {
  file: string;
  fileSize: number;
  version: number;
  metadata: Record<string, MetadataValue>;
  tensors: Map<string, GgufTensor>;
  dataStart: number;
}

/** A fetch that answers `Range: bytes=a-b` requests from a ByteSource (206, Content-Range). */
export function byteSourceFetch(src: ByteSource): typeof fetch {
  return (async (_input: RequestInfo | URL, init?: RequestInit) => {
    const range = new Headers(init?.headers).get('Range') ?? `bytes=0-${src.size - 1}`;
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m) return new Response(null, { status: 416 });
    const start = Math.min(Number(m[1]), src.size);
    const end = Math.min(m[2] ? Number(m[2]) + 1 : src.size, src.size);
    const bytes = await src.read(start, Math.max(0, end - start));
    return new Response(bytes, {
      status: 206,
      headers: { 'Content-Range': `bytes ${start}-${Math.max(start, end - 1)}/${src.size}`, 'Content-Length': String(bytes.byteLength) },
    });
  }) as typeof fetch;
}

const toNumber = (v: number | bigint, what: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new GgufError(`${what}: ${String(v)} is too large`);
  return n;
};

export async function readGgufHeader(src: ByteSource): Promise<GgufHeader> {
  const file = src.name;
  if (src.size < 24) throw new GgufError(`${file}: ${src.size} bytes is too short to be a GGUF file`);
  const magic = new TextDecoder().decode(await src.read(0, 4));
  if (magic !== 'GGUF') throw new GgufError(`${file}: not a GGUF file (it starts with ${JSON.stringify(magic)}, not "GGUF")`);
  let parsed: GGUFParseOutput;
  try {
    // The URL only has to look like http(s) for the package to take the fetch path in Node.
    parsed = await gguf(`https://gguf.invalid/${encodeURIComponent(file)}`, { fetch: byteSourceFetch(src) });
  } catch (e) {
    throw new GgufError(`${file}: the GGUF header could not be read (${(e as Error).message}); the file may be truncated or corrupt — download it again`);
  }
  if (!parsed.littleEndian) throw new GgufError(`${file}: a big-endian GGUF file; only little-endian files (as llama.cpp writes them) are supported`);
  const dataStart = toNumber(parsed.tensorDataOffset, `${file}: tensor data offset`);
  const tensors = new Map<string, GgufTensor>();
  for (const t of parsed.tensorInfos) {
    const dims = t.shape.map((d) => toNumber(d, `${file}: tensor "${t.name}" dims`));
    const begin = dataStart + toNumber(t.offset, `${file}: tensor "${t.name}" offset`);
    let end: number | null = null;
    let format: BlockFormat | null = null;
    try {
      format = formatOfType(t.dtype);
    } catch (e) {
      if (!(e instanceof GgufTypeError)) throw e;
    }
    if (format) {
      const count = dims.reduce((a, b) => a * b, 1);
      if (dims[0]! % format.blockSize !== 0)
        throw new GgufError(`${file}: tensor "${t.name}" has rows of ${dims[0]} elements, not whole ${format.name} blocks of ${format.blockSize}`);
      end = begin + (count / format.blockSize) * format.blockBytes;
      if (end > src.size)
        throw new GgufError(
          `${file}: truncated: tensor "${t.name}" ends at byte ${end} but the file has only ${src.size} bytes (${end - src.size} missing); download it again`,
        );
    }
    if (tensors.has(t.name)) throw new GgufError(`${file}: tensor "${t.name}" appears twice`);
    tensors.set(t.name, { name: t.name, type: t.dtype, typeName: ggmlTypeName(t.dtype), dims, shape: [...dims].reverse(), begin, end });
  }
  const { version } = parsed.metadata;
  return { file, fileSize: src.size, version, metadata: parsed.metadata as unknown as Record<string, MetadataValue>, tensors, dataStart };
}
