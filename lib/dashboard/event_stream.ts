/**
 * Server-Sent Events to every open page: one `text/event-stream` response per page, each
 * message `event: NAME` and one line of JSON. A page that goes away is dropped.
 */

const encoder = new TextEncoder();

/** One message in the `text/event-stream` format. Pure. */
export function formatEvent(name: string, data: unknown, id?: number): string {
  return `event: ${name}\n${id === undefined ? "" : `id: ${id}\n`}data: ${
    JSON.stringify(data)
  }\n\n`;
}

export class EventHub {
  readonly #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  readonly #onCountChange: (count: number) => void;

  /** `onCountChange`: called with the number of open pages whenever it changes. */
  constructor(onCountChange: (count: number) => void = () => {}) {
    this.#onCountChange = onCountChange;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** A response that streams every later message, after `first` (the state as it is now). */
  open(first: string, headers: HeadersInit = {}): Response {
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        controller.enqueue(encoder.encode(first));
        this.#clients.add(controller);
        this.#onCountChange(this.#clients.size);
      },
      cancel: () => {
        if (self && this.#clients.delete(self)) this.#onCountChange(this.#clients.size);
      },
    });
    return new Response(body, {
      headers: {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
      },
    });
  }

  /** Sends one message to every open page. */
  send(name: string, data: unknown, id?: number): void {
    const bytes = encoder.encode(formatEvent(name, data, id));
    for (const c of [...this.#clients]) {
      try {
        c.enqueue(bytes);
      } catch {
        this.#clients.delete(c);
        this.#onCountChange(this.#clients.size);
      }
    }
  }

  /** Ends every stream (the server is stopping). */
  close(): void {
    for (const c of this.#clients) {
      try {
        c.close();
      } catch {
        // Already gone.
      }
    }
    this.#clients.clear();
    this.#onCountChange(0);
  }
}
