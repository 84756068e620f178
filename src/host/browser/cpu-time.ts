/**
 * CPU time for preview1's process and thread clocks: browsers expose none, so both are undefined and
 * preview1 reports wall time since the instance started instead.
 */
export const processCpuNs: (() => bigint) | undefined = undefined;
export const threadCpuNs: (() => bigint) | undefined = undefined;
