// Writes each test's state, errors, annotations and artifacts to $HYVE_INNER_REPORT.
import { writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class JsonReport implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const tests = modules.flatMap((module) =>
      [...module.children.allTests()].map((test) => ({
        name: test.name,
        state: test.result().state,
        errors: (test.result().errors ?? []).map((e) => e.message),
        duration: test.diagnostic()?.duration,
        annotations: test.annotations(),
        artifacts: test.artifacts(),
      })),
    );
    writeFileSync(process.env.HYVE_INNER_REPORT!, JSON.stringify(tests, null, 2));
  }
}
