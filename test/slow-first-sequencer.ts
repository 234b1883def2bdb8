import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Starts the files under test/slow/ first. Each is one long boot (Debian's stock kernel
 * takes many minutes without hardware virtualization); started last, it would run alone
 * after everything else and decide the length of the whole run. Started first, the other
 * files share the second worker meanwhile.
 */
export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isSlow = (file: TestSpecification) => file.moduleId.includes('/test/slow/');
    return [...sorted.filter(isSlow), ...sorted.filter((file) => !isSlow(file))];
  }
}
