/**
 * QEMU with TCG as the benchmarks' peer: the same kernel, initramfs and devices as a hyve
 * guest, driven through the same Guest class (run(), serial, openPort(), hostPort()), so
 * every figure on both sides comes from the same measuring code. Benchmark-only: QEMU
 * (Debian qemu-system-x86) is no dependency of the library.
 *
 * TCG, not KVM: QEMU's -enable-kvm cannot boot Linux on a PVM host (docs: PVM-NOTES), and
 * on hardware KVM the peer worth comparing is the same translator anyway for this host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Guest } from '../src/guest.js';
import { resolveForwards, type PortForward } from '../src/network.js';
import type { DiskOptions } from '../src/disks.js';
import type { VmExit, VmProcess } from '../src/vm-process.js';

export const QEMU = 'qemu-system-x86_64';

export interface QemuOptions {
  kernel: string;
  initrd: string;
  /** The kernel command line hyve's bootFiles() gives the same guest (hyve's PVM additions are the VMM's, not in it). */
  cmdline: string;
  memoryMiB: number;
  /** virtio-blk (in order: vda, vdb, ...) or one AHCI disk ('ahci'); `serial` as hyve's. */
  disks?: DiskOptions[];
  /** QEMU's user networking (its own libslirp) with these forwards: the guest sees 10.0.2.x as under hyve. */
  network?: 'user';
  /**
   * The user-mode stack behind `network: 'user'`: QEMU's libslirp (default), or a passt
   * process on a UNIX socket (QEMU's stream netdev), to weigh the two stacks in one VMM.
   */
  userStack?: 'slirp' | 'passt';
  forwardPorts?: PortForward[];
  /** Named virtio-console ports, as bootGuest({ ports }). */
  ports?: string[];
}

/** The QEMU process, shaped as the part of VmProcess that Guest uses. */
class QemuProcess extends EventEmitter<{ console: [port: number, data: Buffer]; log: [line: string] }> {
  readonly exited: Promise<VmExit>;
  readonly pid: number | undefined;
  private exitInfo: VmExit | undefined;
  private readonly child: ChildProcess;

  constructor(args: string[], onEnd: () => void) {
    super();
    // The serial console on stdio: bytes pass unchanged both ways (no monitor multiplexing).
    this.child = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.child.stdout!.on('data', (data: Buffer) => this.emit('console', 0, data));
    let stderr = '';
    this.child.stderr!.on('data', (data: Buffer) => {
      stderr += data.toString();
      for (const line of data.toString().split('\n').filter(Boolean)) this.emit('log', `qemu: ${line}`);
    });
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => {
        stderr += error.message;
      });
      this.child.on('close', (code, signal) => {
        onEnd();
        this.exitInfo = {
          outcome: code === 0 ? 'poweroff' : 'error',
          code: code ?? 1,
          message: signal ? `qemu killed by ${signal}` : `qemu exited with ${code}: ${stderr.trim()}`,
          signal,
          stats: null,
        };
        resolve(this.exitInfo);
      });
    });
  }

  get exit(): VmExit | undefined {
    return this.exitInfo;
  }
  write(data: string | Uint8Array): void {
    this.child.stdin!.write(data);
  }
  stats(): Promise<null> {
    return Promise.resolve(null);
  }
  markReady(): void {}
  kill(): Promise<VmExit> {
    if (!this.exitInfo) this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** Starts QEMU TCG with `options`; the guest is ready once its console prints the default guest's marker. */
export async function startQemu(options: QemuOptions): Promise<Guest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-bench-qemu-'));
  const args = ['-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio'];
  args.push('-m', String(options.memoryMiB), '-smp', '1', '-kernel', options.kernel, '-initrd', options.initrd, '-append', options.cmdline);
  (options.disks ?? []).forEach((disk, i) => {
    // file.locking=off: the same image may be attached twice (virtio-blk and AHCI) as under hyve.
    const drive = `if=none,id=d${i},format=raw,file=${disk.path},file.locking=off`;
    if (disk.interface === 'ahci') {
      // QEMU's ide-hd takes no read-only drive; the benchmark only reads it.
      args.push('-device', `ahci,id=ahci${i}`, '-drive', drive, '-device', `ide-hd,drive=d${i},bus=ahci${i}.0`);
    } else {
      args.push('-drive', `${drive}${disk.readOnly ? ',readonly=on' : ''}`);
      args.push('-device', `virtio-blk-pci,drive=d${i}${disk.serial ? `,serial=${disk.serial}` : ''}`);
    }
  });
  const forwards = await resolveForwards(options.forwardPorts);
  let passt: ChildProcess | undefined;
  if (options.network === 'user' && options.userStack === 'passt') {
    passt = await startPasst(dir);
    args.push('-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${path.join(dir, 'passt.sock')}`);
    args.push('-device', 'virtio-net-pci,netdev=n0');
  } else if (options.network === 'user') {
    const fwd = forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join('');
    args.push('-netdev', `user,id=n0${fwd}`, '-device', 'virtio-net-pci,netdev=n0');
  }
  const sockets = new Map<string, string>();
  if (options.ports?.length) {
    args.push('-device', 'virtio-serial-pci');
    options.ports.forEach((name, i) => {
      const socket = path.join(dir, `${name}.sock`);
      sockets.set(name, socket);
      args.push('-chardev', `socket,id=p${i},path=${socket},server=on,wait=off`, '-device', `virtserialport,chardev=p${i},name=${name}`);
    });
  }
  const vm = new QemuProcess(args, () => {
    passt?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const guest = new Guest(vm as unknown as VmProcess, 'qemu');
  guest.setForwards(passt ? [] : forwards); // passt gets none (startPasst)
  for (const [name, socket] of sockets) guest.portSockets.set(name, socket);
  return guest;
}

/**
 * passt (Debian `passt`) in the foreground on `dir`/passt.sock, IPv4 only, with no
 * forwards: with Debian 12's passt under QEMU 7.2 they never complete (bench/network.ts's
 * passtPath), so the benchmark measures guest → host only. It stays root (`--runas 0`) so
 * that it can reach the socket in the benchmark's private directory. The guest gets the
 * host's address and gateway by DHCP; passt maps connections to that gateway to the
 * host's loopback, which is where the benchmark's servers listen.
 */
async function startPasst(dir: string): Promise<ChildProcess> {
  const socket = path.join(dir, 'passt.sock');
  const child = spawn('passt', ['-f', '-q', '-4', '--runas', '0', '-s', socket, '-t', 'none', '-u', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const failed = new Promise<never>((_, reject) => {
    child.on('error', (error) => reject(new Error(`passt did not start (Debian package passt): ${error.message}`)));
    child.on('exit', (code) => reject(new Error(`passt exited with ${code}: ${stderr.trim()}`)));
  });
  failed.catch(() => {});
  for (let waited = 0; !existsSync(socket); waited += 50) {
    if (waited > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`passt made no socket at ${socket} within 10 s: ${stderr.trim()}`);
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), failed]);
  }
  return child;
}
