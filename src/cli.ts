#!/usr/bin/env node
/**
 * The `hyve` executable: xhyve's command line (see hyve.1 and src/cli/), and
 * `hyve fixtures` to build the default guest.
 */
import { main } from './cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    // Exit only once stdout has drained (the guest's last bytes, -M or --print-options output).
    process.stdout.write('', () => process.exit(code));
  },
  (error: Error) => {
    process.stderr.write(`hyve: ${error.message}\n`);
    process.exit(1);
  },
);
