export { createLinuxBackend, hostArch, type LinuxBackendOptions, type LinuxBackend, type IdMapping } from './backend.ts';
export { planContainer, validatePlan, DOCKER_DEFAULT_CAPS, type Plan, type PlanHost, type PlanMount, type CgroupSupport } from './plan.ts';
export { bwrapArgs, buildInvocation, type Invocation, type Tools } from './invocation.ts';
export { compileSeccomp, encodeSeccomp, evaluateSeccomp, defaultSeccompPolicy, type SeccompPolicy } from './seccomp.ts';
export { ensureMaterialised, writeTree, layerDir } from './materialise.ts';
export { rootfsLookup } from './rootfs-lookup.ts';
export { FinalFs, type FinalFsHandle } from './final-fs.ts';
