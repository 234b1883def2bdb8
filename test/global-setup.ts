/** Builds the default guest once before any test file runs (about 5 minutes the first time). */
import { ensureDefaultGuest } from 'hyve';

export default async function setup(): Promise<void> {
  await ensureDefaultGuest({ onProgress: (line) => process.stderr.write(`[hyve fixtures] ${line}\n`) });
}
