// The console's calls to its JSON API, relative to the page (…/console/api/…). The session is an
// HttpOnly cookie the browser sends by itself; the CSRF token lives only in this module's memory
// and goes in a header on every call that changes something.

let csrf = null;

/** Keeps the session's CSRF token (from sign-in or GET api/session). */
export function setCsrf(token) {
  csrf = token;
}

/** An error answer of the API: HTTP status, jailkeeper code, message, Retry-After seconds. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** One call; resolves to the parsed JSON, rejects with an ApiError. */
export async function api(method, path, { body, query } = {}) {
  const url = new URL(`api/${path}`, document.baseURI);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf !== null) headers['x-jailkeeper-csrf'] = csrf;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The console server did not answer.', null);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(
      response.status,
      data?.error?.code ?? null,
      data?.error?.message ?? `The server answered ${response.status}.`,
      response.headers.get('retry-after'),
    );
  }
  return data;
}
