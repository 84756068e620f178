import process from 'node:process';

/**
 * CPU time for preview1's process and thread clocks, in nanoseconds from an arbitrary origin.
 * Undefined where the host cannot tell (the caller falls back to wall time then).
 */
export const processCpuNs: (() => bigint) | undefined = () => {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
};

type ThreadCpuUsage = () => { user: number; system: number };
const threadCpuUsage = (process as unknown as { threadCpuUsage?: ThreadCpuUsage }).threadCpuUsage;

/** The calling thread's own CPU time, where Node has process.threadCpuUsage (Node 23.9 and later). */
export const threadCpuNs: (() => bigint) | undefined =
  typeof threadCpuUsage === 'function'
    ? () => {
        const u = threadCpuUsage.call(process);
        return BigInt(u.user + u.system) * 1000n;
      }
    : undefined;
