// Registered for every test file (vitest.config.ts setupFiles). Most tests here are synchronous and
// vitest chains them with promises, so a file of long tests can keep the worker's event loop from
// turning for minutes; the replies to the worker's RPC calls then wait behind it and time out after
// 60 s ("[vitest-worker]: Timeout calling onTaskUpdate", seen with the GPU suites on an H100 while
// every test passed). One macrotask turn after each test lets them through.
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
