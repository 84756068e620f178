import { readAll } from '../byte-source.ts';

/** The response headers the registry client reads (a `Headers` fits). */
export interface HttpHeaders {
  get(name: string): string | null;
}

/** A request body that can be produced again for a retry: bytes, or a stream of known length. */
export type HttpBody = Uint8Array | { size: number; open(): Promise<ReadableStream<Uint8Array>> };

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: HttpBody;
  /** No response headers, or no body byte while the reader waits, for this long: `timeoutError()`. */
  timeoutMs: number;
  timeoutError: () => Error;
}

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  url: string;
  /** Reads are guarded by the idle timeout; cancelling releases the connection. */
  body: ReadableStream<Uint8Array> | null;
}

/** One HTTP exchange, redirects not followed (the client follows them itself, minding Authorization). */
export interface HttpTransport {
  request(url: string, r: HttpRequest): Promise<HttpResponse>;
  /** Whether stream request bodies are sent as they are read (else they are read into memory first). */
  readonly streamsBodies: boolean;
  /** Closes idle kept-alive connections. */
  close(): void;
}

const READ_AHEAD_BYTES = 1024 * 1024;

/** The transport over `fetch` (browsers, and a fetch given in options). Stream bodies are read into memory first. */
export function fetchTransport(fetchFn: typeof fetch): HttpTransport {
  return {
    streamsBodies: false,
    close() {},
    async request(url, r) {
      const ctrl = new AbortController();
      const { timeoutMs, timeoutError } = r;
      let timer = setTimeout(() => ctrl.abort(timeoutError()), timeoutMs);
      let res: Response;
      try {
        const init: RequestInit = { method: r.method, headers: r.headers, signal: ctrl.signal, redirect: 'manual' };
        if (r.body) init.body = (r.body instanceof Uint8Array ? r.body : await readAll(await r.body.open(), r.body.size, 'request body')) as unknown as BodyInit;
        res = await fetchFn(url, init);
        if (res.type === 'opaqueredirect') {
          // Browsers hide manual redirects; their fetch drops Authorization on a cross-origin redirect itself.
          res = await fetchFn(url, { ...init, redirect: 'follow' });
        }
      } catch (e) {
        clearTimeout(timer);
        if (ctrl.signal.aborted) throw ctrl.signal.reason;
        throw e;
      }
      clearTimeout(timer);
      let body: ReadableStream<Uint8Array> | null = null;
      if (res.body) {
        const reader = res.body.getReader();
        body = new ReadableStream<Uint8Array>({
          async pull(c) {
            timer = setTimeout(() => ctrl.abort(timeoutError()), timeoutMs);
            try {
              const { done, value } = await reader.read();
              if (done) c.close();
              else c.enqueue(value);
            } catch (e) {
              throw ctrl.signal.aborted ? ctrl.signal.reason : e;
            } finally {
              clearTimeout(timer);
            }
          },
          cancel(reason) {
            clearTimeout(timer);
            return reader.cancel(reason).catch(() => {});
          },
          // Reads ahead while the consumer writes to disk: network and disk overlap.
        }, new ByteLengthQueuingStrategy({ highWaterMark: READ_AHEAD_BYTES }));
      }
      return { status: res.status, headers: res.headers, url: res.url || url, body };
    },
  };
}
