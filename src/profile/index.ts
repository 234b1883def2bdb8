/** The guest profiler's TypeScript half: symbols, folded stacks, the report. */
export { loadSymbols, type SymbolTable } from './symbols.js';
export { parseFolded, formatFolded, symbolize, symbolizeFile, type FoldedStack } from './folded.js';
export { summarize, formatReport, type FunctionCost, type ProfileSummary } from './report.js';
export { readPhases, formatPhases, phasesFileFor, type PhaseRecord, type PhaseMark } from './phases.js';

/** bootGuest({ profile }) and startVm({ profile }). */
export interface ProfileOptions {
  /** Where the folded stacks are written when the VM ends. */
  file: string;
  /** Samples per second per vCPU. Default 99. */
  hz?: number;
  /**
   * A vmlinux (ELF) or System.map to name kernel addresses with. Default: the kernel
   * itself when it is an ELF file, the default guest's vmlinux for the default guest;
   * otherwise the file keeps hex addresses (`hyve profile-report --symbols` names them later).
   */
  symbols?: string;
}
