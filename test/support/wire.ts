/** What the API returns, typed with the service's own types (one definition, not a copy). */
import type {
  Balance,
  BalanceSummary,
  BatchItemResult,
  BatchReply,
  Entry,
  Grant,
  GrantReply,
  Hold,
  HoldReply,
  Spend,
  SpendReply,
  Team,
} from "../../src/domain/vocabulary";

export type EntryT = Entry;
export type GrantT = Grant;
export type BalanceSummaryT = BalanceSummary;
export type BalanceT = Balance;
export type HoldT = Hold;
export type SpendT = Spend;
export type TeamT = Team;
export type GrantReplyT = GrantReply;
export type SpendReplyT = SpendReply;
export type HoldReplyT = HoldReply;
export type BatchResultT = BatchItemResult;
export type BatchReplyT = BatchReply;

export interface EntriesPageT {
  entries: EntryT[];
  nextCursor: string | null;
}
