// Types of capacity-model.mjs for the TypeScript that imports it (test/domain/capacity.test.ts):
// tsconfig.json does not check JavaScript. Keep in step with the JSDoc there.

export interface Figure {
  value: number;
  unit: string;
  source: string;
  confirmed: boolean;
  note?: string;
}

export declare const PLATFORM: Readonly<Record<string, Figure>> & {
  readonly objectSoftRequestsPerSecond: Figure;
  readonly objectWritingRequestsPerSecondHigh: Figure;
  readonly objectWritingRequestsPerSecondLow: Figure;
  readonly objectStorageBytes: Figure;
  readonly d1DatabaseBytes: Figure;
  readonly d1BusyMsPerSecond: Figure;
  readonly d1QueryMsFloor: Figure;
  readonly queueMessagesPerSecond: Figure;
  readonly queueMessageBytes: Figure;
  readonly queueConsumerBatchMessages: Figure;
};

export declare const SECONDS_PER_MONTH: number;

export interface CapacityInputs {
  teams: number;
  spendsPerSecond: number;
  hotTeamShare: number;
  teamsActiveShare: number;
  entriesPerSpend: number;
  bytesPerEntry: number;
  messageBytesPerEntry: number;
  objectBytesPerSpend: number;
  objectRowsReadPerSpend: number;
  objectRowsWrittenPerSpend: number;
  objectRowsReadPerFlushedEntry: number;
  objectRowsWrittenPerFlush: number;
  objectRowsReadPerFlush: number;
  alarmsSetPerFlush: number;
  objectActiveMsPerRequest: number;
  objectActiveMsPerFlush: number;
  workerCpuMsPerRequest: number;
  d1RowsWrittenPerEntry: number;
  d1RowsReadPerEntry: number;
  d1UsPerRow: number;
  d1RowsPerStatement: number;
  d1RowsPerBatchCall: number;
  flushDelayMs: number;
  retentionMonths: number;
}

export interface LimitCheck {
  id: string;
  what: string;
  kind: "rate" | "storage";
  design: "both" | "current" | "queue";
  load: number;
  limit: number;
  unit: string;
  ratio: number;
  source: string;
}

export interface CostLine {
  item: string;
  usage: number;
  unit: string;
  costMicroUsd: number;
}

export interface DesignResult {
  flushesPerSecond: number;
  d1BatchCallsPerSecond: number;
  d1QueriesPerSecond: number;
  d1RowsPerQuery: number;
  d1QueryMs: number;
  d1BusyMsPerSecond: number;
  queueMessagesPerSecond: number;
  queueConsumerInvocationsPerSecond: number;
  largestMessageBytes: number;
  messagesPerHotFlush: number;
  costs: CostLine[];
  totalMicroUsd: number;
  breaksFirst: LimitCheck;
}

export interface CapacityResult {
  inputs: CapacityInputs;
  objects: number;
  activeObjects: number;
  hotObjectRequestsPerSecond: number;
  otherObjectRequestsPerSecond: number;
  entriesPerSecond: number;
  hotFlushesPerSecond: number;
  hotEntriesPerFlush: number;
  otherEntriesPerFlush: number;
  d1GrowthGbPerMonth: number;
  monthsToD1Limit: number;
  hotObjectGrowthGbPerMonth: number;
  monthsToObjectLimit: number;
  designs: { current: DesignResult; queue: DesignResult };
  limits: LimitCheck[];
}

export declare function flushesPerSecond(spendsPerSecond: number, flushDelayMs: number): number;
export declare function billedMicroUsd(
  usage: number,
  included: number,
  priceMicroUsdPerUnitBlock: number,
  block?: number,
): number;
export declare function breaksFirst(limits: LimitCheck[]): LimitCheck;
export declare function capacity(inputs: CapacityInputs): CapacityResult;
