// A merged-model FolderSink that writes a zip in memory (the Export page's "Merged model" download).
// Separate from export-service.ts so Node tests can run the studio's merge output through it.
import { Zip, ZipPassThrough } from 'fflate';
import type { FolderSink } from '../../train/merge';

/** A FolderSink writing a zip (stored, not deflated: weights do not compress) into Blob parts. */
export function zipSink(folder: string): FolderSink & { finish(): Blob } {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let failed: Error | null = null;
  const zip = new Zip((err, data) => {
    if (err) failed = err;
    else chunks.push(data as Uint8Array<ArrayBuffer>);
  });
  return {
    async write(name, parts) {
      const file = new ZipPassThrough(folder ? `${folder}/${name}` : name);
      zip.add(file);
      for await (const p of parts) file.push(p.slice());
      file.push(new Uint8Array(0), true);
      if (failed) throw failed;
    },
    finish() {
      zip.end();
      if (failed) throw failed;
      return new Blob(chunks, { type: 'application/zip' });
    },
  };
}
