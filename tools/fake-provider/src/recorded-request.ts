/** One chat message as the fake saw it: content flattened to plain text. */
export interface RecordedMessage {
  role: string;
  content: string;
}

/** Sampling parameters of a request, each recorded only when it was sent. */
export interface RecordedSampling {
  topP?: number;
  seed?: number;
  /** `stop`, a single string as a list of one. */
  stop?: string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/**
 * One chat completion request as received, for tests to assert on: what was
 * asked, with which key, when, and how it ended.
 */
export interface RecordedRequest extends RecordedSampling {
  model: string;
  messages: RecordedMessage[];
  temperature?: number;
  /** `max_completion_tokens`, or else `max_tokens`, when the request set one. */
  maxTokens?: number;
  /** `response_format` exactly as sent, when sent. */
  responseFormat?: Record<string, unknown>;
  stream: boolean;
  /** The raw `Authorization` header, e.g. `Bearer test`. */
  authorization?: string;
  /** `Date.now()` when the request arrived. */
  receivedAt: number;
  /** `Date.now()` when the response ended or the client went away. */
  finishedAt?: number;
  /** The HTTP status sent, or 499 when the client disconnected before the response ended. */
  status?: number;
}
