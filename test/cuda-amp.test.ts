// Mixed precision on a real GPU (helpers/amp-suite.ts): cuda/cast16.cu against the host conversions
// bit for bit, autocast's 16-bit GEMMs and fused attention against float32 references, the
// GradScaler's unscale kernel. Skipped, with the reason printed, where no CUDA device is available;
// test/amp-emulated.test.ts runs the same suite on the emulated device everywhere.
import * as tsm from '../lib/index';
import { defineAmpSuite } from './helpers/amp-suite';

const available = tsm.cuda.isAvailable();
if (!available) console.log(`[cuda-amp.test] GPU tests skipped: ${tsm.cuda.unavailableReason()}`);

defineAmpSuite('mixed precision on a CUDA device', available);
