/** Facts about the host that change defaults (not behaviour): PVM hosts are much slower. */
import { existsSync } from 'node:fs';

/**
 * True when /dev/kvm is provided by the kvm_pvm module (KVM without hardware
 * virtualization): guest kernel mode runs under an instruction emulator there.
 */
export function hostIsPvm(): boolean {
  return existsSync('/sys/module/kvm_pvm');
}

/** A timeout scaled for the host: boots that take well under a second on hardware KVM take ~a minute on PVM. */
export function defaultTimeoutMs(hardwareMs: number, pvmMs: number): number {
  return hostIsPvm() ? pvmMs : hardwareMs;
}
