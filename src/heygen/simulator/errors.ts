/** A v3 error answer: `{"error":{"code","message","param","doc_url"}}` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { error: { code: string; message: string; param: string | null; doc_url: string | null } } {
    return { error: { code: this.code, message: this.message, param: this.param, doc_url: null } };
  }
}

export const validationError = (param: string | null, message: string): ApiError =>
  new ApiError(400, 'validation_error', message, param);

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);
