/** The one error type wasmbox throws. `code` is stable; messages are for people. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_REFERENCE'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PLATFORM_MISMATCH'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MALFORMED'
  | 'UNSAFE_LAYER'
  | 'CAPABILITY_DENIED'
  | 'BACKEND_UNAVAILABLE'
  | 'LIMIT_EXCEEDED'
  | 'INVALID_STATE'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NETWORK'
  | 'TIMEOUT'
  | 'NOT_RUNNABLE'
  | 'INTERNAL';

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.data = options.data ?? {};
  }
}

export function isSandboxError(e: unknown, code?: ErrorCode): e is SandboxError {
  return e instanceof SandboxError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a SandboxError, keeping typed ones as they are. */
export function toSandboxError(e: unknown, fallback: ErrorCode = 'INTERNAL'): SandboxError {
  if (e instanceof SandboxError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new SandboxError(fallback, message, { cause: e });
}
