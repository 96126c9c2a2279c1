// The raw native addon, for tests of the binding and kernels below the TypeScript layer.
import { addon } from '../../lib/native';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const raw: any = addon<any>();
