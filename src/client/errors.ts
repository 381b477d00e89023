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

  /** For BAD_USER_INPUT: the input field at fault (`extensions.field`, e.g. `input.native`). */
  get field(): string | undefined {
    const field = this.extensions['field'];
    return typeof field === 'string' ? field : undefined;
  }

  /** For BAD_USER_INPUT: what the field accepts (`extensions.allowed`: a dialect's names). */
  get allowed(): string[] | undefined {
    const allowed = this.extensions['allowed'];
    return Array.isArray(allowed) ? allowed.map(String) : undefined;
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
