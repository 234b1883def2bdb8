/**
 * The VM's identity: the SMBIOS system UUID a guest reads from /sys/class/dmi/id/product_uuid
 * (and dmidecode, systemd, cloud-init). xhyve's `-U` and `bootGuest({ uuid })` set it.
 */
import { createHash } from 'node:crypto';
import { VmStartError } from './vm-process.js';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The UUID in canonical lower case; a malformed one is a VmStartError (HYVE_BAD_CONFIG). */
export function checkUuid(uuid: unknown): string {
  if (typeof uuid !== 'string' || !UUID_RE.test(uuid)) {
    throw new VmStartError(
      `invalid uuid ${JSON.stringify(uuid)}: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)`,
      'HYVE_BAD_CONFIG',
    );
  }
  return uuid.toLowerCase();
}

/** hyve's namespace for name-based UUIDs (itself a random UUID, fixed forever). */
const HYVE_NAMESPACE = '6f1d2c3a-8e4b-4f7a-9c2d-5b8e0a1f3c47';

/**
 * A name-based UUID (RFC 4122 version 5: SHA-1 of hyve's namespace and the name): the same
 * name gives the same UUID on every run and host, different names differ.
 */
export function uuidFromName(name: string): string {
  const namespace = Buffer.from(HYVE_NAMESPACE.replace(/-/g, ''), 'hex');
  const bytes = createHash('sha1').update(namespace).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
