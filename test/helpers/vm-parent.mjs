// A process that starts one VM and then idles; the orphans test SIGKILLs it.
import { startVm } from 'hyve';

const vm = startVm({ kernel: process.argv[2], memoryMiB: 64 });
vm.on('console', (_port, data) => {
  if (data.toString().includes('type a line')) console.log('VM-PID', vm.pid);
});
setInterval(() => {}, 1000);
