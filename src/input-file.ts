/**
 * Checks on the files hyve reads as input (kernels, initrds, snapshot files) before a VM
 * process opens them. Only stat(): opening a FIFO would block, and a check must not.
 * The VMM repeats the check when it opens each file (native/util/file.h), without blocking.
 */
import { statSync } from 'node:fs';

/** Why `file` is not a readable regular file ("does not exist", "is a FIFO", ...), or undefined when it is one. */
export function notRegularFile(file: string): string | undefined {
  let st;
  try {
    st = statSync(file);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return code === 'ENOENT' ? 'does not exist' : `cannot be examined (${message})`;
  }
  if (st.isFile()) return undefined;
  const kind = st.isDirectory()
    ? 'a directory'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isSocket()
        ? 'a socket'
        : st.isCharacterDevice()
          ? 'a character device'
          : st.isBlockDevice()
            ? 'a block device'
            : 'a special file';
  return `is ${kind}, not a regular file`;
}
