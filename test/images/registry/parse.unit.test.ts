/**
 * The registry client's parsers, alone (no registry): docker:// references by distribution's
 * grammar (images/registry/reference.ts), WWW-Authenticate challenges (auth.ts), docker config
 * credentials (credentials.ts), platforms (platform.ts) and wish-list durations and globs
 * (release/image-sync/wishlist.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../base/errors.ts';
import { parseChallenge } from '../../../images/registry/auth.ts';
import { credentialsFor } from '../../../images/registry/credentials.ts';
import { matchesPlatform, parsePlatform } from '../../../images/registry/platform.ts';
import { parseRegistryRef } from '../../../images/registry/reference.ts';
import { globRe, parseDuration } from '../../../release/image-sync/wishlist.ts';

describe('docker:// references', () => {
  it('registry, repository, tag and digest', () => {
    expect(parseRegistryRef('docker://registry.example.org:5000/alice/job:2026.11')).toMatchObject({ registry: 'registry.example.org:5000', endpoint: 'registry.example.org:5000', repository: 'alice/job', tag: '2026.11' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseRegistryRef(`docker://localhost/x@${d}`)).toMatchObject({ registry: 'localhost', repository: 'x', tag: undefined, digest: d });
    expect(parseRegistryRef(`docker://127.0.0.1:5000/x:1@${d}`)).toMatchObject({ tag: '1', digest: d });
    expect(parseRegistryRef('docker://127.0.0.1:5000/a/b/c')).toMatchObject({ repository: 'a/b/c', tag: 'latest' });
    expect(parseRegistryRef('docker://almalinux:9')).toMatchObject({ registry: 'docker.io', endpoint: 'registry-1.docker.io', repository: 'library/almalinux', tag: '9' });
  });

  it('refuses what the grammar refuses, as usage errors', () => {
    for (const bad of ['registry.example.org/x', 'docker://r.example.org/UPPER:1', 'docker://r.example.org/x:-1', 'docker://r.example.org/x@sha256:12', 'docker://r.example.org/a//b', 'docker://r_x.org:1/a', `docker://r.example.org/x:${'t'.repeat(129)}`]) {
      expect(() => parseRegistryRef(bad), bad).toThrow(UsageError);
    }
  });
});

describe('challenges, credentials, platforms, durations', () => {
  it('parses bearer and basic challenges with quoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example.org/token",service="registry.example.org",scope="repository:a/b:pull"')).toEqual({ scheme: 'bearer', params: { realm: 'https://auth.example.org/token', service: 'registry.example.org', scope: 'repository:a/b:pull' } });
    expect(parseChallenge('Basic realm="with \\"quotes\\", and commas"')).toEqual({ scheme: 'basic', params: { realm: 'with "quotes", and commas' } });
    expect(parseChallenge(undefined)).toBeUndefined();
  });

  it('reads auths from a docker config: base64 auth, username/password, URL keys, Docker Hub aliases', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-dockercfg-'));
    try {
      const f = path.join(dir, 'config.json');
      fs.writeFileSync(f, JSON.stringify({ auths: {
        'https://r.example.org:5000/v2/': { auth: Buffer.from('alice:pa:ss').toString('base64') },
        'https://index.docker.io/v1/': { username: 'bob', password: 'pw' },
      } }));
      expect(credentialsFor('r.example.org:5000', f)).toEqual({ username: 'alice', password: 'pa:ss', identityToken: undefined });
      expect(credentialsFor('docker.io', f)).toMatchObject({ username: 'bob', password: 'pw' });
      expect(credentialsFor('other.example.org', f)).toBeUndefined();
      fs.writeFileSync(f, '{ not json');
      expect(() => credentialsFor('r.example.org:5000', f)).toThrow(/not valid JSON/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the credential helper docker config names (credHelpers per host before credsStore), as docker does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-credhelper-'));
    const oldPath = process.env.PATH;
    try {
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      // the helper protocol (docker-credential-helpers): `get`, the server address on stdin, JSON out
      const helper = (name: string, body: string) => fs.writeFileSync(path.join(bin, `docker-credential-${name}`), `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r addr\n${body}\n`, { mode: 0o755 });
      helper('per', 'case "$addr" in r.example.org:5000) echo \'{"ServerURL":"r","Username":"carol","Secret":"s3"}\';; *) echo "credentials not found in native keychain"; exit 1;; esac');
      helper('store', 'case "$addr" in https://index.docker.io/v1/) echo \'{"Username":"<token>","Secret":"refresh-token"}\';; *) echo "credentials not found in native keychain"; exit 1;; esac');
      helper('broken', 'echo "keychain locked" >&2; exit 1');
      process.env.PATH = `${bin}:${oldPath}`;
      const f = path.join(dir, 'config.json');
      const write = (doc: unknown) => fs.writeFileSync(f, JSON.stringify(doc));
      write({ credsStore: 'store', credHelpers: { 'r.example.org:5000': 'per' }, auths: { 'r.example.org:5000': { auth: Buffer.from('file:pw').toString('base64') } } });
      expect(credentialsFor('r.example.org:5000', f)).toEqual({ username: 'carol', password: 's3' });
      expect(credentialsFor('docker.io', f)).toEqual({ username: '', password: '', identityToken: 'refresh-token' });
      expect(credentialsFor('other.example.org', f)).toBeUndefined(); // the store has none: anonymous
      write({ credHelpers: { 'r.example.org:5000': 'broken' } });
      expect(() => credentialsFor('r.example.org:5000', f)).toThrow(/docker-credential-broken get exited with 1: keychain locked/);
      write({ credsStore: 'absent' });
      expect(() => credentialsFor('r.example.org:5000', f)).toThrow(/docker-credential-absent is not on PATH/);
      write({ credsStore: '../../bin/sh' });
      let err: unknown;
      try {
        credentialsFor('r.example.org:5000', f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).where).toBe(`${f}: credsStore`);
    } finally {
      process.env.PATH = oldPath;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('platforms match with an optional variant', () => {
    expect(matchesPlatform(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(matchesPlatform(parsePlatform('linux/arm64/v7'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(false);
    expect(matchesPlatform(parsePlatform(undefined), { os: 'linux', architecture: 'amd64' })).toBe(true);
    expect(() => parsePlatform('amd64')).toThrow(UsageError);
  });

  it('durations and tag globs of the wish list', () => {
    expect(parseDuration('2d', 'x')).toBe(172_800_000);
    expect(parseDuration('36h', 'x')).toBe(129_600_000);
    expect(parseDuration('0', 'x')).toBe(0);
    expect(() => parseDuration('soon', 'x')).toThrow(UsageError);
    expect(globRe('2026.*').test('2026.11')).toBe(true);
    expect(globRe('2026.*').test('2026x11')).toBe(false);
    expect(globRe('v?').test('v1')).toBe(true);
  });
});
