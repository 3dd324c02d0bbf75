// Reading a stream of server-sent events (the API's GET .../events) as it arrives, for the CLI
// and the dashboard alike: complete events out of the text so far, the unfinished rest kept.
// No dependency: the dashboard bundles this file.

export interface ServerSentEvent {
  event: string;
  data: unknown;
}

/** The complete events in `buffer` (each ends with a blank line; comments skipped), and what follows them. */
export function takeServerSentEvents(buffer: string): { events: ServerSentEvent[]; rest: string } {
  const events: ServerSentEvent[] = [];
  let rest = buffer;
  let end: number;
  while ((end = rest.indexOf('\n\n')) !== -1) {
    const block = rest.slice(0, end);
    rest = rest.slice(end + 2);
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event && data !== undefined) events.push({ event, data: JSON.parse(data) });
  }
  return { events, rest };
}
