/**
 * Base of hyve's errors that carry a stable code (docs/errors.md): callers branch on
 * `error.code`, never on the message, and `instanceof HyveError` catches them all.
 */
export class HyveError<Code extends string = string> extends Error {
  constructor(
    message: string,
    readonly code: Code,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
