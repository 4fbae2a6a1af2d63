'use strict';
// Which platform package holds this machine's binary, and where the binary is. The
// packages are optionalDependencies with `os`, `cpu` and `libc` set, so npm installs only
// the one that fits (as esbuild and biome ship theirs).

const path = require('node:path');

/** `linux-x64-gnu`, `darwin-arm64`, `win32-x64`, ... for this process. */
function platformKey() {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}`;
  return `${platform}-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
}

/** Node's own report names the glibc it runs on; without one the C library is musl. */
function isMusl() {
  try {
    const header = process.report.getReport().header;
    return !header.glibcVersionRuntime;
  } catch {
    return false;
  }
}

/** The path of the `lifeboat` binary: LIFEBOAT_BINARY, else the platform package's. */
function binaryPath() {
  if (process.env.LIFEBOAT_BINARY) return process.env.LIFEBOAT_BINARY;
  const key = platformKey();
  const name = `lifeboat-${key}`;
  const exe = process.platform === 'win32' ? 'lifeboat.exe' : 'lifeboat';
  let manifest;
  try {
    manifest = require.resolve(`${name}/package.json`);
  } catch {
    throw new Error(
      `lifeboat has no binary for ${key}: the optional package ${name} is not installed ` +
        '(was the install run with --no-optional, or on another platform?). ' +
        'Install it, or set LIFEBOAT_BINARY to a lifeboat binary.',
    );
  }
  return path.join(path.dirname(manifest), 'bin', exe);
}

module.exports = { platformKey, binaryPath };
