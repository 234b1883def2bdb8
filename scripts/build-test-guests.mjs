// Builds what the tests compile on first use (the bespoke test guests, the guest programs
// and the SSH overlay) into hyve's cache, before `vitest run`: on a host without /dev/kvm
// the tests then run in the nested-KVM VM (scripts/with-kvm.sh), where gcc is about ten
// times slower and several test files starting at once would each compile there.
import { buildAllTestGuests } from '../dist/test/helpers/guests.js';

const started = Date.now();
await buildAllTestGuests();
console.log(`test guests built (${((Date.now() - started) / 1000).toFixed(1)} s)`);
