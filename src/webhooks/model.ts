/**
 * The shapes the webhook objects exchange with each other and answer the routes with: an
 * endpoint's configuration (with and without its secret), the subscription list the worker's copy
 * holds, and deliveries with their attempts. Types only.
 */
import type { EventType } from "../domain/events";

export type EndpointStatus = "enabled" | "disabled";

/** What an endpoint listens to: some event types, or `["*"]` for all. */
export type EventSelector = EventType | "*";

export interface EndpointInput {
  url: string;
  events: EventSelector[];
  /** Absent: a new endpoint gets a generated secret, an existing one keeps its own. */
  secret?: string | undefined;
}

/** An endpoint as reads show it: never its secret. */
export interface EndpointView {
  id: string;
  url: string;
  events: EventSelector[];
  status: EndpointStatus;
  /** Why the endpoint is disabled (a 410 Gone from the receiver), null while enabled. */
  disabledReason: string | null;
  secretPrefix: string;
  /** 1 at creation, +1 at every change. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A PUT's answer: the endpoint, with the secret when this PUT set it (the only time it is shown). */
export interface PutEndpointReply extends EndpointView {
  secret?: string;
}

/**
 * What an endpoint object needs to deliver. `generation` tells one life of an endpoint id from the
 * next: it is the directory's version when the endpoint was created, so an id deleted and created
 * again never sees the deliveries of its former life.
 */
export interface DeliveryConfig {
  id: string;
  url: string;
  secret: string;
  status: EndpointStatus;
  generation: number;
}

/** One enabled endpoint as the hand-off sees it. */
export interface Subscription {
  id: string;
  events: EventSelector[];
  generation: number;
}

/** The enabled endpoints at one directory version. */
export interface SubscriptionList {
  version: number;
  endpoints: Subscription[];
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface AttemptView {
  at: string;
  durationMs: number;
  /** The receiver's status, null when there was none (network error, timeout, refused URL). */
  httpStatus: number | null;
  /** Null on a 2xx. */
  error: string | null;
}

export interface DeliveryView {
  id: string;
  /** The event's id: the `webhook-id` of every attempt. */
  eventId: string;
  eventType: string;
  teamId: string;
  seq: number;
  status: DeliveryStatus;
  attemptCount: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
  /** Oldest first; the most recent WEBHOOK_ATTEMPTS_RETAINED_PER_DELIVERY. */
  attempts: AttemptView[];
}

export interface DeliveryPage {
  deliveries: DeliveryView[];
  /** Pass as `before` for the next page (older deliveries); null at the end. */
  nextBefore: number | null;
}
