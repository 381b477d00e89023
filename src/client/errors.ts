/** A GraphQL error the server answered with (its message and `extensions.code`). */
export class RunstateError extends Error {
  constructor(
    message: string,
    /** `extensions.code`: BAD_USER_INPUT, NOT_FOUND, FORBIDDEN, RATE_LIMITED… */
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'RunstateError';
  }
}

/** A status change the server refused (IllegalTransition, TransitionConflict or RunNotFound). */
export class TransitionRefusedError extends Error {
  constructor(
    /** The refusal's type name. */
    readonly kind: 'IllegalTransition' | 'TransitionConflict' | 'RunNotFound',
    message: string,
    /** The refusal as the server sent it. */
    readonly details: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'TransitionRefusedError';
  }
}

/** The server could not be reached (or kept failing) after every retry. */
export class RunstateUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunstateUnavailableError';
  }
}
