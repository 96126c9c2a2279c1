#!/usr/bin/env node
// Install step of the package: use a prebuilt binary when one matches this platform (prebuilds/ or a
// previous build in build/Release), otherwise build from source with cmake-js. Setting
// npm_config_build_from_source=true (npm install --build-from-source) always builds.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function truthy(v) {
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

function prebuiltLoads() {
  try {
    // node-gyp-build looks in build/Release and prebuilds/<platform>-<arch>/; loading it proves the
    // binary matches this platform, ABI and libc.
    require('node-gyp-build')(root);
    return true;
  } catch (err) {
    return false;
  }
}

function buildFromSource() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'build', '--out', 'build'];
  if (process.env.TSM_CUDA) args.push(`--CDTSM_CUDA=${process.env.TSM_CUDA}`);
  console.log(`tensorsmith: building the native addon from source (${args.slice(1).join(' ')})`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(
      'tensorsmith: the native build failed. It needs CMake >= 3.18 and a C++17 compiler ' +
        '(Debian/Ubuntu: apt-get install cmake g++). See the messages above.',
    );
    process.exit(r.status || 1);
  }
}

const fromSource = truthy(process.env.npm_config_build_from_source) || truthy(process.env.TSM_BUILD_FROM_SOURCE);
if (!fromSource && prebuiltLoads()) {
  console.log('tensorsmith: using the prebuilt native addon');
} else {
  buildFromSource();
}
