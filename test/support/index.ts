/** The tests' support, one folder: import from here. */
export * from "./calls";
export * from "./chain";
export * from "./history-lines";
export * from "./invariants";
export * from "./object";
export * from "./operations";
export * from "./plans";
export * from "./wire";
